//! A throwaway certificate authority: `olinctl dev` (and the tests) run NATS
//! with TLS as production does, with certificates made for the run.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A CA made on the spot, to sign certificates for local servers.
pub struct ThrowawayCa {
    pem: String,
    issuer: rcgen::Issuer<'static, KeyPair>,
}

impl ThrowawayCa {
    /// A fresh CA key and self-signed certificate, named `name`.
    ///
    /// # Errors
    /// If the key or certificate cannot be made.
    pub fn new(name: &str) -> Result<ThrowawayCa, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key)?.pem();
        Ok(ThrowawayCa { pem, issuer: rcgen::Issuer::new(params, key) })
    }

    /// The CA certificate (PEM), for clients to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `names` (host names or IP addresses) signed by
    /// this CA, with its key.
    ///
    /// # Errors
    /// If a name is unusable or signing fails.
    pub fn issue(&self, names: &[&str]) -> Result<(rcgen::Certificate, KeyPair), rcgen::Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)?.signed_by(&key, &self.issuer)?;
        Ok((cert, key))
    }
}
