//! Signed variant URLs: `/api/v1/images/{id}/{variant}?expires=…&sig=…`, which work without a
//! bearer token (an `<img src>` cannot send one) until they expire.
//!
//! The signature is an HMAC-SHA256 of the image id, the variant name and the expiry, keyed with
//! a key derived from `JWT_SECRET_KEY` (so a signature is never also a token signature). Expiry
//! times are rounded up to a step of a quarter of the lifetime (at most an hour): every metadata
//! read within one step hands out the same URL, which browsers and CDNs can then cache.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The signature does not match (tampered, or signed with another secret).
    BadSignature,
    /// It matched, but its time has passed.
    Expired,
}

/// Signs and checks variant URLs.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
    ttl_secs: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer keyed from the server secret; URLs live at least `ttl_secs`.
    pub fn new(secret: &str, ttl_secs: u64) -> Signer {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"imgest-server signed variant URLs v1");
        Signer {
            key: mac.finalize().into_bytes().into(),
            ttl_secs: ttl_secs.max(1),
        }
    }

    /// When a URL signed at `now` (seconds since the epoch) expires: `now + ttl`, rounded up to
    /// the step.
    pub fn expiry(&self, now: u64) -> u64 {
        let step = (self.ttl_secs / 4).clamp(1, 3600);
        (now + self.ttl_secs).div_ceil(step) * step
    }

    fn mac(&self, image_id: &str, variant: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        // Lengths first, so no two (id, variant) pairs give the same message.
        for part in [image_id.as_bytes(), variant.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// The signed URL (path and query) of a variant, valid until `expires`.
    pub fn url(&self, image_id: &str, variant: &str, expires: u64) -> String {
        let sig =
            URL_SAFE_NO_PAD.encode(self.mac(image_id, variant, expires).finalize().into_bytes());
        format!("/api/v1/images/{image_id}/{variant}?expires={expires}&sig={sig}")
    }

    /// Checks a signature (in constant time) and then the expiry against `now`.
    pub fn check(
        &self,
        image_id: &str,
        variant: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| Refusal::BadSignature)?;
        self.mac(image_id, variant, expires)
            .verify_slice(&sig)
            .map_err(|_| Refusal::BadSignature)?;
        if now > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> (u64, String) {
        let q = url.split_once('?').unwrap().1;
        let (e, s) = q.split_once('&').unwrap();
        (
            e.strip_prefix("expires=").unwrap().parse().unwrap(),
            s.strip_prefix("sig=").unwrap().to_string(),
        )
    }

    #[test]
    fn a_url_checks_until_it_expires_and_only_for_what_it_names() {
        let s = Signer::new("a-server-secret-0123456789", 3600);
        let now = 1_800_000_100;
        let expires = s.expiry(now);
        assert!(
            expires >= now + 3600 && expires < now + 3600 + 900,
            "{expires}"
        );
        assert_eq!(expires % 900, 0);
        // Within one step every read gets the same URL.
        assert_eq!(s.expiry(now + 1), expires);
        let url = s.url("img-1", "thumbnail", expires);
        assert!(url.starts_with("/api/v1/images/img-1/thumbnail?expires="));
        let (e, sig) = query(&url);
        assert_eq!(s.check("img-1", "thumbnail", e, &sig, now), Ok(()));
        assert_eq!(s.check("img-1", "thumbnail", e, &sig, e), Ok(()));
        assert_eq!(
            s.check("img-1", "thumbnail", e, &sig, e + 1),
            Err(Refusal::Expired)
        );
        for (id, variant, exp) in [
            ("img-2", "thumbnail", e),
            ("img-1", "large", e),
            ("img-1", "thumbnail", e + 3600),
            ("img-1thumb", "nail", e),
        ] {
            assert_eq!(
                s.check(id, variant, exp, &sig, now),
                Err(Refusal::BadSignature),
                "{id} {variant} {exp}"
            );
        }
        let mut flipped = sig.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [flipped.as_str(), "", "!!!", &sig[..sig.len() - 2]] {
            assert_eq!(
                s.check("img-1", "thumbnail", e, bad, now),
                Err(Refusal::BadSignature),
                "{bad}"
            );
        }
        // Another secret, another key.
        let other = Signer::new("another-secret-0123456789", 3600);
        assert_eq!(
            other.check("img-1", "thumbnail", e, &sig, now),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn short_lifetimes_round_to_the_second() {
        let s = Signer::new("a-server-secret-0123456789", 1);
        assert_eq!(s.expiry(100), 101);
        let s = Signer::new("a-server-secret-0123456789", 7 * 86_400);
        assert_eq!(s.expiry(0) % 3600, 0);
    }
}
