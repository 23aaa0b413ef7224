//! Who may call a function (its invoke keys, for a private one) and which
//! of its versions serves a call (the canary's weighted share).

use http::HeaderMap;
use olin_proto::v1::RouteRecord;

/// Header carrying the invoke key of a private function (or use
/// `Authorization: Bearer <key>`).
pub(super) const INVOKE_KEY_HEADER: &str = olin_proto::subject::HTTP_INVOKE_KEY;

/// For a private function: the caller must present a key whose sha256 the
/// route lists. The key never reaches the function: `Olin-Invoke-Key` is
/// removed, and so is an `Authorization` header that carried the key.
pub(super) fn check_invoke_key(route: &RouteRecord, headers: &mut HeaderMap) -> Result<Option<String>, &'static str> {
    use sha2::Digest as _;
    if route.visibility != olin_proto::v1::Visibility::Private as i32 {
        return Ok(None);
    }
    let listed = |key: &str| {
        let hash = hex::encode(sha2::Sha256::digest(key.trim().as_bytes()));
        route.invoke_key_sha256.contains(&hash).then_some(hash)
    };
    let header_key = headers.remove(INVOKE_KEY_HEADER);
    if let Some(key) = header_key.as_ref().and_then(|v| v.to_str().ok()) {
        return listed(key).map(Some).ok_or("the invoke key is not valid for this function");
    }
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    match bearer.map(listed) {
        Some(Some(hash)) => {
            headers.remove(http::header::AUTHORIZATION);
            Ok(Some(hash))
        }
        Some(_) => Err("the invoke key is not valid for this function"),
        None => Err("this function is private: send its invoke key in Olin-Invoke-Key or Authorization: Bearer"),
    }
}

/// Picks the module of one call: weighted among a canary's targets.
pub(super) fn pick_target(route: &RouteRecord) -> Option<&str> {
    let total: u32 = route.targets.iter().map(|t| t.weight).sum();
    if total == 0 {
        return route.targets.first().map(|t| t.module_sha256.as_str());
    }
    let mut roll = rand::random::<u32>() % total;
    for t in &route.targets {
        if roll < t.weight {
            return Some(&t.module_sha256);
        }
        roll -= t.weight;
    }
    route.targets.last().map(|t| t.module_sha256.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use olin_proto::v1::RouteTarget;

    #[test]
    fn private_functions_need_a_listed_key() {
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(b"ok_secret"));
        let route = RouteRecord {
            visibility: olin_proto::v1::Visibility::Private as i32,
            invoke_key_sha256: vec![hash],
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        assert!(check_invoke_key(&route, &mut h).is_err(), "no key");
        h.insert("olin-invoke-key", HeaderValue::from_static("wrong"));
        assert!(check_invoke_key(&route, &mut h).is_err(), "wrong key");
        h.insert("olin-invoke-key", HeaderValue::from_static("ok_secret"));
        assert!(check_invoke_key(&route, &mut h).is_ok());
        assert!(h.get("olin-invoke-key").is_none(), "the key is not passed on");
        h.insert("authorization", HeaderValue::from_static("Bearer ok_secret"));
        assert!(check_invoke_key(&route, &mut h).is_ok());
        assert!(h.get("authorization").is_none());
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        assert!(check_invoke_key(&route, &mut h).is_err());
        let public = RouteRecord::default();
        assert!(check_invoke_key(&public, &mut HeaderMap::new()).is_ok());
    }

    #[test]
    fn weighted_targets() {
        let t = |s: &str, w| RouteTarget { module_sha256: s.into(), weight: w, version_id: String::new() };
        let route = RouteRecord { targets: vec![t("a", 90), t("b", 10)], ..Default::default() };
        let n = 10_000;
        let a = (0..n).filter(|_| pick_target(&route) == Some("a")).count();
        assert!((8_700..9_300).contains(&a), "{a}");
        let single = RouteRecord { targets: vec![t("x", 0)], ..Default::default() };
        assert_eq!(pick_target(&single), Some("x"));
        assert_eq!(pick_target(&RouteRecord::default()), None);
    }
}
