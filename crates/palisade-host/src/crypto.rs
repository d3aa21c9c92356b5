//! `crypto`: random bytes (the OS's, or the deterministic seed's), UUIDs and SHA digests.

use palisade_core::host::{HostError, HostValue};
use palisade_core::rng::DeterministicRng;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The Web Crypto cap on one `getRandomValues` call.
pub const MAX_RANDOM_BYTES: usize = 65_536;

/// Where random bytes come from for one execution.
#[derive(Debug)]
pub(crate) enum Randomness {
    /// The operating system's CSPRNG.
    Os,
    /// Deterministic mode: a stream derived from the policy's seed (distinct from `Math.random`'s).
    Seeded(DeterministicRng),
}

impl Randomness {
    pub(crate) fn new(seed: Option<u64>) -> Self {
        match seed {
            // A fixed odd constant keeps this stream apart from Math.random's for the same seed.
            Some(seed) => Randomness::Seeded(DeterministicRng::new(seed ^ 0x9e37_79b9_7f4a_7c15)),
            None => Randomness::Os,
        }
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> Result<(), HostError> {
        match self {
            Randomness::Os => getrandom::fill(buf).map_err(|e| {
                HostError::named(
                    "OperationError",
                    format!("the OS random source failed: {e}"),
                )
            }),
            Randomness::Seeded(rng) => {
                rng.fill(buf);
                Ok(())
            }
        }
    }

    /// `crypto.getRandomValues`: `arg` is the byte count (the prelude checked the type).
    pub(crate) fn random_values(&mut self, arg: &str) -> Result<HostValue, HostError> {
        let n: usize = arg
            .parse()
            .map_err(|_| HostError::type_error("getRandomValues: bad length"))?;
        if n > MAX_RANDOM_BYTES {
            return Err(HostError::named(
                "QuotaExceededError",
                format!(
                    "getRandomValues: {n} bytes requested, at most {MAX_RANDOM_BYTES} per call"
                ),
            ));
        }
        let mut buf = vec![0u8; n];
        self.fill(&mut buf)?;
        Ok(HostValue::Bytes(buf))
    }

    /// `crypto.randomUUID`: an RFC 9562 version 4 UUID, lower-case.
    pub(crate) fn uuid(&mut self) -> Result<HostValue, HostError> {
        let mut b = [0u8; 16];
        self.fill(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(HostValue::Str(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }
}

/// `crypto.subtle.digest`: algorithm names match case-insensitively, as Web Crypto's do.
pub(crate) fn digest(algorithm: &str, data: &[u8]) -> Result<HostValue, HostError> {
    let out = match algorithm.to_ascii_uppercase().as_str() {
        "SHA-1" => Sha1::digest(data).to_vec(),
        "SHA-256" => Sha256::digest(data).to_vec(),
        "SHA-384" => Sha384::digest(data).to_vec(),
        "SHA-512" => Sha512::digest(data).to_vec(),
        _ => {
            return Err(HostError::named(
                "NotSupportedError",
                format!(
                    "Unrecognized algorithm name: {algorithm:?} (supported: SHA-1, SHA-256, SHA-384, SHA-512)"
                ),
            ))
        }
    };
    Ok(HostValue::Bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(v: HostValue) -> String {
        match v {
            HostValue::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digests_match_the_fips_180_vectors() {
        let abc = b"abc";
        assert_eq!(
            hex(digest("SHA-1", abc).unwrap()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest("sha-256", abc).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex(digest("SHA-384", b"").unwrap()).starts_with("38b060a751ac9638"));
        assert!(hex(digest("SHA-512", abc).unwrap()).starts_with("ddaf35a193617aba"));
        assert_eq!(digest("MD5", abc).unwrap_err().name, "NotSupportedError");
    }

    #[test]
    fn seeded_randomness_repeats_and_uuids_are_v4() {
        let mut a = Randomness::new(Some(7));
        let mut b = Randomness::new(Some(7));
        assert_eq!(
            a.random_values("32").unwrap(),
            b.random_values("32").unwrap()
        );
        let HostValue::Str(u) = Randomness::Os.uuid().unwrap() else {
            panic!()
        };
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_eq!(
            Randomness::Os.random_values("65537").unwrap_err().name,
            "QuotaExceededError"
        );
    }
}
