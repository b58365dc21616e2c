//! Content digests: how a verdict, a policy or a finding is referred to exactly, later.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A `sha256:<hex>` digest of some canonical bytes (a policy, a set of evidence).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    /// Digest of a value's JSON serialisation. Our types serialise maps as `BTreeMap`s and lists in a
    /// fixed order, so equal values give equal digests.
    pub fn of_json<T: Serialize>(value: &T) -> Digest {
        // Serialising our own data types to a Vec cannot fail (no non-string map keys, no I/O).
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        Digest::of_bytes(&bytes)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A digest as a human typed or pasted it: `sha256:` and 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let t = text.trim();
        match t.strip_prefix("sha256:") {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(Digest(t.to_owned())),
            _ => Err(format!("{text:?} is not a digest (sha256: and 64 lowercase hex digits)")),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of "the same finding" across two scans (baseline and candidate).
///
/// Built from the parts of a finding that survive a fix being applied elsewhere: the rule or
/// vulnerability ID and *where in the workload* it sits (package, file, resource kind and name, URL
/// path, container). It deliberately leaves out what differs between baseline and candidate by
/// construction: image reference and installed version, namespace (a shadow lives in its own), URL
/// scheme and host (production versus shadow Service), timestamps and pod names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Fingerprint of ordered identity parts. Parts are length-prefixed so `["ab","c"]` and
    /// `["a","bc"]` differ.
    pub fn of(parts: &[&str]) -> Fingerprint {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        // 128 bits is ample for identity within one report and keeps SARIF/JUnit output readable.
        Fingerprint(hex(&hasher.finalize()[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_digest_parses_and_anything_else_is_refused() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(Digest::parse(&format!(" {d} ")), Ok(d.clone()));
        for bad in ["", "sha256:", "sha256:abc", "md5:00", &d.as_str().to_uppercase()] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_separate_parts_unambiguously() {
        assert_ne!(Fingerprint::of(&["ab", "c"]), Fingerprint::of(&["a", "bc"]));
        assert_eq!(Fingerprint::of(&["x", "y"]), Fingerprint::of(&["x", "y"]));
        assert_eq!(Fingerprint::of(&["x"]).as_str().len(), 32);
    }

    #[test]
    fn digests_are_prefixed_sha256_of_the_bytes() {
        let d = Digest::of_bytes(b"abc");
        assert_eq!(d.as_str(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
