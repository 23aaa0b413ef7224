//! The fd table of one call: what `resource_open` opened, by fd. A leaf
//! below both the process state (which owns the table) and the
//! `resource_*` host functions (which fill and use it).

use crate::egress::Origin;
use crate::errno::OlinError;

/// The first fd a resource gets (0, 1 and 2 are stdin, stdout, stderr).
const FIRST_FD: usize = 3;

/// An opened resource. The bytes an `http(s)` resource holds are charged to
/// the call's host budget while it holds them.
#[derive(Debug)]
pub(crate) enum Resource {
    Log { prefix: Option<String> },
    Null,
    Zero,
    Random,
    Http { origin: Origin, request: Vec<u8>, response: Option<(Vec<u8>, usize)> },
}

impl Resource {
    /// Host bytes this resource keeps (charged to the budget).
    pub(crate) fn held(&self) -> usize {
        match self {
            Resource::Http { request, response, .. } => request.len() + response.as_ref().map_or(0, |(r, _)| r.len()),
            Resource::Log { prefix } => prefix.as_ref().map_or(0, String::len),
            _ => 0,
        }
    }
}

/// The fd table of one call.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    slots: Vec<Option<Resource>>,
    cap: usize,
}

impl Resources {
    pub(crate) fn new(cap: usize) -> Self {
        Self { slots: Vec::new(), cap }
    }

    pub(crate) fn insert(&mut self, r: Resource) -> Result<i32, OlinError> {
        let open = self.slots.iter().filter(|s| s.is_some()).count();
        if open >= self.cap {
            return Err(OlinError::PermissionDenied);
        }
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(r);
                }
                i
            }
            None => {
                self.slots.push(Some(r));
                self.slots.len() - 1
            }
        };
        i32::try_from(idx + FIRST_FD).map_err(|_| OlinError::Unknown)
    }

    pub(crate) fn get(&mut self, fd: i32) -> Option<&mut Resource> {
        let idx = usize::try_from(fd).ok()?.checked_sub(FIRST_FD)?;
        self.slots.get_mut(idx)?.as_mut()
    }

    pub(crate) fn remove(&mut self, fd: i32) -> Option<Resource> {
        let idx = usize::try_from(fd).ok()?.checked_sub(FIRST_FD)?;
        self.slots.get_mut(idx)?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_are_small_sequential_and_capped() {
        let mut r = Resources::new(2);
        assert_eq!(r.insert(Resource::Null), Ok(3));
        assert_eq!(r.insert(Resource::Zero), Ok(4));
        assert_eq!(r.insert(Resource::Null), Err(OlinError::PermissionDenied));
        assert!(r.remove(3).is_some());
        assert!(r.remove(3).is_none());
        assert!(r.remove(-1).is_none());
        assert!(r.remove(1).is_none());
        assert_eq!(r.insert(Resource::Random), Ok(3), "the lowest free fd is reused");
        assert!(r.get(4).is_some());
        assert!(r.get(99).is_none());
    }
}
