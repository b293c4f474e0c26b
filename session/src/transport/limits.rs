//! What one request's presented session ids may cost, in one place: a bound on values parsed
//! and looked up in memory, then on signature checks, then on backend round trips. Each is
//! spent in that order, so the cheap steps shield the dear ones: values planted in front of the
//! real one (cookies set for a parent domain, say) cost a parse and a lookup each, and only
//! values worth it are verified or loaded.

/// How many presented values (header values, then cookies of our name) one request may have
/// parsed and looked up in memory. A browser sends one, or a few when cookies of other paths
/// or domains share the name; an attacker who can set cookies for a parent domain (a sibling
/// subdomain) can plant many more in front of the real one. Parsing and a memory lookup cost
/// little, so the bound is generous: the real session is found behind 64 planted values.
pub(crate) const MAX_VALUES_EXAMINED: usize = 128;

/// How many presented values one request may have verified (an HMAC each, over the whole
/// User-Agent when that is bound). Values whose id is in memory are verified first, so a
/// cached session is found whatever is planted before it; then, with a backend, the others in
/// order, each verified before it may cost a round trip.
pub(crate) const MAX_SIGNATURE_CHECKS: usize = 80;

/// How many presented ids missing from memory one request may look up in the backend. With a
/// key only correctly signed values get this far, so forged ones cost nothing; without a key
/// any well-formed id does, and a session that is not in this server's memory is found only
/// among the first few such ids.
pub(crate) const MAX_BACKEND_LOOKUPS: usize = 4;
