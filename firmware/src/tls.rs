//! The review app's TLS: a clinic CA made at provisioning, and the server certificate it issues.
//!
//! The clinic installs one file, `tls/ca.pem`, on its browsers and tablets; after that the review
//! app is trusted without warnings, and a renewed server certificate needs nothing new on them.
//! The CA is name-constrained to the appliance's own names and the clinic's networks, so even its
//! key, if stolen, cannot vouch for any other site. IT can instead point `web.tls_cert` /
//! `web.tls_key` at a certificate from the clinic's own CA; a certificate this module did not
//! issue is never touched. Private keys are readable by their owner only.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints,
};
use time::{Duration, OffsetDateTime};

use crate::egress::Cidr;

/// Browsers (Apple's in particular) refuse server certificates valid longer than this.
const SERVER_VALIDITY_DAYS: i64 = 825;
/// `issue` renews a server certificate that expires sooner than this.
const RENEW_WITHIN_DAYS: i64 = 60;
const CA_VALIDITY_DAYS: i64 = 20 * 365;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot issue a TLS certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("cannot read {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// What `issue` did with each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutcome {
    /// The clinic CA was made now.
    CaCreated,
    /// A server certificate was issued by the clinic CA, and why.
    Issued { reason: &'static str, not_after: String },
    /// The server certificate is valid for these names long enough.
    Kept { not_after: String },
    /// The certificate was not issued by this appliance's CA (IT's own): left alone.
    NotOurs,
}

/// The files in the TLS folder.
pub struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    pub fn new(dir: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

/// Makes sure the review app has a certificate from the clinic CA for `names` (DNS names or IP
/// addresses): the CA is made if there is none, and the server certificate is issued if it is
/// missing, about to expire, or lacks one of the names. `networks` bound the CA's addresses.
pub fn issue(dir: &Path, clinic: &str, names: &[String], networks: &[Cidr]) -> Result<Vec<TlsOutcome>, TlsError> {
    let files = TlsFiles::new(dir);
    let (ca_exists, cert_exists) = (files.ca_cert().exists(), files.cert().exists() && files.key().exists());
    if cert_exists && !ca_exists {
        return Ok(vec![TlsOutcome::NotOurs]);
    }
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut outcomes = Vec::new();
    let (ca_params, ca_key) = if ca_exists {
        let pem = read(&files.ca_cert())?;
        let key = KeyPair::from_pem(&read(&files.ca_key())?)?;
        (None, (pem, key))
    } else {
        let key = KeyPair::generate()?;
        let params = ca_params(clinic, names, networks)?;
        let cert = params.self_signed(&key)?;
        write_private(&files.ca_key(), &key.serialize_pem())?;
        std::fs::write(files.ca_cert(), cert.pem()).map_err(write_err(&files.ca_cert()))?;
        outcomes.push(TlsOutcome::CaCreated);
        (Some(params), (cert.pem(), key))
    };

    let reason = if !cert_exists || ca_params.is_some() {
        Some("new")
    } else {
        let existing = read(&files.cert())?;
        match server_status(&existing, names)? {
            ServerStatus::Good { not_after } => {
                outcomes.push(TlsOutcome::Kept { not_after });
                None
            }
            ServerStatus::Expiring => Some("renewed: it expired or expires within 60 days"),
            ServerStatus::MissingName => Some("reissued: it did not name all of the appliance's names"),
        }
    };
    if let Some(reason) = reason {
        let (ca_pem, ca_key) = ca_key;
        let issuer = match &ca_params {
            Some(params) => Issuer::from_params(params, &ca_key),
            None => Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?,
        };
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.is_ca = IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(SERVER_VALIDITY_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&files.key(), &key.serialize_pem())?;
        // The chain: the server's certificate, then the CA's, so clients can build the path.
        let chain = format!("{}{}", cert.pem(), ca_pem);
        std::fs::write(files.cert(), chain).map_err(write_err(&files.cert()))?;
        outcomes.push(TlsOutcome::Issued {
            reason,
            not_after: day(params.not_after),
        });
    }
    Ok(outcomes)
}

/// A CA that can only vouch for the appliance's own names and addresses in the clinic's
/// networks (and loopback), and for no intermediate CA.
fn ca_params(clinic: &str, names: &[String], networks: &[Cidr]) -> Result<CertificateParams, TlsError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Scribe clinic CA: {clinic}"));
    params.distinguished_name.push(DnType::OrganizationName, clinic);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    let mut permitted: Vec<GeneralSubtree> = names
        .iter()
        .filter(|n| n.parse::<IpAddr>().is_err())
        .map(|n| GeneralSubtree::DnsName(n.clone()))
        .collect();
    let loopback = ["127.0.0.0/8", "::1/128"].map(|c| c.parse::<Cidr>().expect("loopback parses"));
    for net in loopback.iter().chain(networks) {
        permitted.push(GeneralSubtree::IpAddress(subnet(net)));
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    });
    Ok(params)
}

fn subnet(cidr: &Cidr) -> CidrSubnet {
    match cidr.network() {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(cidr.prefix())).unwrap_or(0);
            CidrSubnet::V4(a.octets(), mask.to_be_bytes())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(cidr.prefix())).unwrap_or(0);
            CidrSubnet::V6(a.octets(), mask.to_be_bytes())
        }
    }
}

enum ServerStatus {
    Good { not_after: String },
    Expiring,
    MissingName,
}

fn server_status(pem: &str, names: &[String]) -> Result<ServerStatus, TlsError> {
    let unreadable = |why: String| TlsError::Read {
        path: PathBuf::from("cert.pem"),
        why,
    };
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| unreadable(e.to_string()))?;
    let cert = parsed.parse_x509().map_err(|e| unreadable(e.to_string()))?;
    let not_after = cert.validity().not_after.to_datetime();
    if not_after - OffsetDateTime::now_utc() < Duration::days(RENEW_WITHIN_DAYS) {
        return Ok(ServerStatus::Expiring);
    }
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                        4 => Some(IpAddr::from(<[u8; 4]>::try_from(*ip).ok()?).to_string()),
                        16 => Some(IpAddr::from(<[u8; 16]>::try_from(*ip).ok()?).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.iter().any(|n| !sans.contains(n)) {
        return Ok(ServerStatus::MissingName);
    }
    Ok(ServerStatus::Good {
        not_after: day(not_after),
    })
}

fn day(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn write_private(path: &Path, pem: &str) -> Result<(), TlsError> {
    crate::files::write_synced(path, pem.as_bytes(), 0o600).map_err(write_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
    use std::os::unix::fs::PermissionsExt;

    fn names() -> Vec<String> {
        vec!["scribe-riverside".into(), "localhost".into(), "127.0.0.1".into()]
    }

    fn lan() -> Vec<Cidr> {
        vec!["10.20.0.0/16".parse().unwrap()]
    }

    /// Whether a browser trusting only ca.pem accepts `leaf_pem` for `name`.
    fn trusted(ca_pem: &[u8], leaf_pem: &[u8], name: &str) -> Result<(), webpki::Error> {
        let ca = CertificateDer::from_pem_slice(ca_pem).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
        let leaf = CertificateDer::from_pem_slice(leaf_pem).unwrap();
        let leaf = webpki::EndEntityCert::try_from(&leaf).unwrap();
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )?;
        leaf.verify_is_valid_for_subject_name(&ServerName::try_from(name.to_string()).unwrap())
    }

    #[test]
    fn the_clinic_ca_issues_the_server_certificate_once() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = issue(dir.path(), "Riverside", &names(), &lan()).unwrap();
        assert_eq!(outcomes[0], TlsOutcome::CaCreated);
        assert!(matches!(outcomes[1], TlsOutcome::Issued { reason: "new", .. }));
        let files = TlsFiles::new(dir.path());
        for key in [files.key(), files.ca_key()] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let (ca, cert) = (
            std::fs::read(files.ca_cert()).unwrap(),
            std::fs::read(files.cert()).unwrap(),
        );
        for name in ["scribe-riverside", "localhost", "127.0.0.1"] {
            trusted(&ca, &cert, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert!(trusted(&ca, &cert, "example.com").is_err());

        // Run again: kept. A new name: reissued by the same CA, which the clinic already trusts.
        let again = issue(dir.path(), "Riverside", &names(), &lan()).unwrap();
        assert!(matches!(again[..], [TlsOutcome::Kept { .. }]), "{again:?}");
        let mut more = names();
        more.push("10.20.0.5".into());
        let reissued = issue(dir.path(), "Riverside", &more, &lan()).unwrap();
        assert!(
            matches!(reissued[..], [TlsOutcome::Issued { reason, .. }] if reason.starts_with("reissued")),
            "{reissued:?}"
        );
        assert_eq!(std::fs::read(files.ca_cert()).unwrap(), ca, "the CA is kept");
        trusted(&ca, &std::fs::read(files.cert()).unwrap(), "10.20.0.5").unwrap();
    }

    #[test]
    fn the_ca_cannot_vouch_for_other_sites() {
        let dir = tempfile::tempdir().unwrap();
        issue(dir.path(), "Riverside", &names(), &lan()).unwrap();
        let files = TlsFiles::new(dir.path());
        let ca_pem = std::fs::read_to_string(files.ca_cert()).unwrap();
        let ca_key = KeyPair::from_pem(&std::fs::read_to_string(files.ca_key()).unwrap()).unwrap();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
        // Whoever holds the CA key signs certificates for a bank and for an address outside the
        // clinic: a client trusting the clinic CA refuses both.
        for name in ["bank.example.com", "8.8.8.8"] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
            params.use_authority_key_identifier_extension = true;
            let forged = params.signed_by(&key, &issuer).unwrap();
            assert!(
                trusted(ca_pem.as_bytes(), forged.pem().as_bytes(), name).is_err(),
                "{name} accepted"
            );
        }
    }

    #[test]
    fn a_certificate_from_it_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::new(dir.path());
        std::fs::write(files.cert(), "IT's certificate").unwrap();
        std::fs::write(files.key(), "IT's key").unwrap();
        assert_eq!(
            issue(dir.path(), "Riverside", &names(), &lan()).unwrap(),
            vec![TlsOutcome::NotOurs]
        );
        assert_eq!(std::fs::read_to_string(files.cert()).unwrap(), "IT's certificate");
        assert!(!files.ca_cert().exists());
    }
}
