//! Result codes the guest sees. This is the only place where host errors
//! become numbers: olin codes (OLIN_ABI.md section 0) and WASI errno values.

/// An olin ABI failure, returned to the guest as a negative code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OlinError {
    /// -1: other failure; the detail goes to the guest's stderr.
    Unknown,
    /// -2: bad argument, bad fd, out-of-bounds pointer, bad UTF-8, unparsable URL.
    InvalidArgument,
    /// -3: blocked by policy (egress allow-list, resource cap).
    PermissionDenied,
    /// -4: missing key, unknown URL scheme.
    NotFound,
    /// -5: no more data.
    Eof,
}

impl OlinError {
    /// The code returned to the guest.
    pub(crate) fn code(self) -> i32 {
        match self {
            Self::Unknown => -1,
            Self::InvalidArgument => -2,
            Self::PermissionDenied => -3,
            Self::NotFound => -4,
            Self::Eof => -5,
        }
    }
}

/// Folds an olin result into the i32 the guest receives.
pub(crate) fn olin(r: Result<i32, OlinError>) -> i32 {
    r.unwrap_or_else(OlinError::code)
}

/// WASI preview1 errno values used by the host (`wasi_snapshot_preview1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum Errno {
    Success = 0,
    Badf = 8,
    Fault = 21,
    Inval = 28,
    Nosys = 52,
    Spipe = 70,
}

impl Errno {
    /// The value returned to the guest.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// Folds a WASI result into the errno the guest receives.
pub(crate) fn wasi(r: Result<(), Errno>) -> i32 {
    match r {
        Ok(()) => Errno::Success.code(),
        Err(e) => e.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn olin_codes_match_the_spec() {
        assert_eq!(olin(Err(OlinError::Unknown)), -1);
        assert_eq!(olin(Err(OlinError::InvalidArgument)), -2);
        assert_eq!(olin(Err(OlinError::PermissionDenied)), -3);
        assert_eq!(olin(Err(OlinError::NotFound)), -4);
        assert_eq!(olin(Err(OlinError::Eof)), -5);
        assert_eq!(olin(Ok(7)), 7);
    }

    #[test]
    fn wasi_errno_values() {
        assert_eq!(wasi(Ok(())), 0);
        assert_eq!(wasi(Err(Errno::Badf)), 8);
        assert_eq!(wasi(Err(Errno::Fault)), 21);
        assert_eq!(wasi(Err(Errno::Inval)), 28);
        assert_eq!(wasi(Err(Errno::Nosys)), 52);
        assert_eq!(wasi(Err(Errno::Spipe)), 70);
    }
}
