//! The few fields of an X.509 certificate (RFC 5280) that TLS checks and messages need
//! beyond what webpki verifies: validity, the first common name, and whether its extended
//! key usage allows a TLS server. A reader of DER slices only: it never allocates beyond
//! the common name, never verifies a signature, and answers `None` for anything it cannot
//! read.

/// Whether the certificate may serve TLS servers: no extended key usage, or one that
/// holds serverAuth or anyExtendedKeyUsage (RFC 5280 §4.2.1.12); `None` when unreadable.
pub fn for_servers(der: &[u8]) -> Option<bool> {
    const EKU: &[u8] = &[0x55, 0x1d, 0x25];
    const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    const ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
    let (_, _, rest) = tbs_parts(der)?;
    let (_, mut rest) = element(rest, 0x30)?; // subjectPublicKeyInfo
    for optional in [0x81, 0x82] {
        if rest.first() == Some(&optional) {
            rest = element(rest, optional)?.1; // issuerUniqueID, subjectUniqueID
        }
    }
    if rest.first() != Some(&0xa3) {
        return Some(true); // no extensions
    }
    let (explicit, _) = element(rest, 0xa3)?;
    let (mut extensions, _) = element(explicit, 0x30)?;
    while !extensions.is_empty() {
        let (extension, after) = element(extensions, 0x30)?;
        extensions = after;
        let (oid, mut value) = element(extension, 0x06)?;
        if oid != EKU {
            continue;
        }
        if value.first() == Some(&0x01) {
            value = element(value, 0x01)?.1; // critical
        }
        let (octets, _) = element(value, 0x04)?;
        let (mut purposes, _) = element(octets, 0x30)?;
        while !purposes.is_empty() {
            let (purpose, after) = element(purposes, 0x06)?;
            purposes = after;
            if purpose == SERVER_AUTH || purpose == ANY {
                return Some(true);
            }
        }
        return Some(false);
    }
    Some(true)
}

/// `notBefore` and `notAfter` of a DER certificate, in Unix seconds.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (validity, _, _) = tbs_parts(der)?;
    let (not_before, after) = time(validity)?;
    let (not_after, _) = time(after)?;
    Some((not_before, not_after))
}

/// The first common name (OID 2.5.4.3) in a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, mut name, _) = tbs_parts(der)?;
    while !name.is_empty() {
        let (set, after) = element(name, 0x31)?;
        name = after;
        let (attribute, _) = element(set, 0x30)?;
        let (oid, value) = element(attribute, 0x06)?;
        if oid == [0x55, 0x04, 0x03] {
            let (text, _) = element(value, *value.first()?)?;
            return Some(String::from_utf8_lossy(text).into_owned());
        }
    }
    None
}

/// `validity`, `subject` and what follows (the key, then the optional unique ids and
/// extensions) of a DER certificate's `tbsCertificate` (RFC 5280 §4.1).
fn tbs_parts(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1; // version
    }
    rest = element(rest, 0x02)?.1; // serialNumber
    rest = element(rest, 0x30)?.1; // signature
    rest = element(rest, 0x30)?.1; // issuer
    let (validity, rest) = element(rest, 0x30)?;
    let (subject, rest) = element(rest, 0x30)?;
    Some((validity, subject, rest))
}

/// The content of the DER element with `tag` at the start of `input`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, rest) = rest.split_first()?;
    let (length, rest) = match length {
        0..=0x7f => (usize::from(length), rest),
        0x81..=0x84 => {
            let count = usize::from(length & 0x7f);
            let bytes = rest.get(..count)?;
            (bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)), &rest[count..])
        }
        _ => return None,
    };
    Some((rest.get(..length)?, rest.get(length..)?))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at the start of
/// `input`, in Unix seconds, and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, content, rest) = match input.first()? {
        0x17 => (0x17, element(input, 0x17)?.0, element(input, 0x17)?.1),
        0x18 => (0x18, element(input, 0x18)?.0, element(input, 0x18)?.1),
        _ => return None,
    };
    let text = std::str::from_utf8(content).ok()?.strip_suffix('Z')?;
    let (year, text) = if tag == 0x17 {
        let yy: i64 = text.get(..2)?.parse().ok()?;
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
    } else {
        (text.get(..4)?.parse().ok()?, &text[4..])
    };
    if text.len() != 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| text[i..i + 2].parse::<i64>().ok();
    Some((crate::time::unix(year, field(0)?, field(2)?, field(4)?, field(6)?, field(8)?)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    #[test]
    fn times_and_elements() {
        assert_eq!(time(b"\x17\x0d491231235959Z"), Some((2_524_607_999, &b""[..])));
        assert_eq!(time(b"\x17\x0d700101000000Z"), Some((0, &b""[..])));
        assert_eq!(time(b"\x18\x0f20261129080000Zx"), Some((1_795_939_200, &b"x"[..])));
        assert_eq!(time(b"\x18\x0f2026112908000Z0"), None);
        assert_eq!(element(&[0x30, 0x81, 0x02, 1, 2, 3], 0x30), Some((&[1u8, 2][..], &[3u8][..])));
        assert_eq!(element(&[0x30, 0x05, 1], 0x30), None);
    }

    #[test]
    fn fields_of_real_certificates() {
        let ca = testkit::Ca::new("test root");
        let root = der(&ca.cert_pem());
        assert_eq!(common_name(&root).as_deref(), Some("test root"));
        assert_eq!(for_servers(&root), Some(true), "no extended key usage: any purpose");
        let (not_before, not_after) = validity(&root).unwrap();
        assert!(not_before < not_after, "{not_before} {not_after}");
        assert_eq!(for_servers(&der(&ca.server_identity().cert_pem)), Some(true));
        let client = der(&ca.client_identity("robot").cert_pem);
        assert_eq!((common_name(&client).as_deref(), for_servers(&client)), (Some("robot"), Some(false)));
        assert_eq!((validity(&root[..20]), common_name(b"\x30\x00"), for_servers(&[])), (None, None, None));
    }
}
