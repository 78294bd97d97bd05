//! Which members this node declares dead before their lease lapses. A process that dies
//! has its sockets closed by its kernel at once, so its links drop; a frozen one (a
//! pause, a stalled VM) keeps them open, and a node cut off by a silent network keeps
//! them until the lease says otherwise. So a member whose link to this node closed (and
//! has not come back), and that has also missed its renewals (silent for two
//! heartbeats by the store's clock), is declared dead then: failover takes about two
//! heartbeats, not a lease. A member that still renews is never declared dead, whatever
//! its links; one that is declared dead while alive finds its lease ended at its next
//! renewal and fences itself, as if its lease had lapsed.

use troupe_store::NodeRecord;

/// The members (name, incarnation) that node `me` declares dead now: live in the node
/// table, their link to `me` `lost`, and silent for at least `silent_ms`.
pub fn due(
    me: &str,
    members: &[NodeRecord],
    lost: &[String],
    silent_ms: u64,
) -> Vec<(String, u64)> {
    members
        .iter()
        .filter(|member| member.live && member.name != me && lost.contains(&member.name))
        .filter(|member| u64::try_from(member.lease_age_ms).unwrap_or(0) >= silent_ms)
        .map(|member| (member.name.clone(), member.incarnation))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, incarnation: u64, lease_age_ms: i64) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            incarnation,
            api_address: String::new(),
            cluster_address: String::new(),
            labels: Vec::new(),
            load: serde_json::Value::Null,
            joined_ms: 0,
            lease_age_ms,
            live: true,
        }
    }

    #[test]
    fn a_member_that_lost_its_link_and_its_renewals_is_declared_dead() {
        let members = [
            member("a", 1, 0),
            member("b", 4, 2_100),
            member("c", 3, 400),
        ];
        let lost = ["b".to_string(), "c".to_string()];
        // b's link closed and it stopped renewing; c's link closed but it renews.
        assert_eq!(due("a", &members, &lost, 2_000), [("b".to_string(), 4)]);
        assert_eq!(due("b", &members, &lost, 2_000), [], "never itself");
    }

    #[test]
    fn a_silent_member_still_linked_or_already_lapsed_is_left_to_its_lease() {
        // Frozen with its link up (not lost), or cut off silently: the lease decides.
        let frozen = [member("b", 1, 4_000)];
        assert_eq!(due("a", &frozen, &[], 2_000), []);
        let mut lapsed = member("b", 2, 9_000);
        lapsed.live = false;
        assert_eq!(due("a", &[lapsed], &["b".to_string()], 2_000), []);
    }
}
