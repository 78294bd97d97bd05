//! A node's lease on its membership, as the node sees it: a pure state machine, driven
//! by the membership actor with the node's monotonic clock and the store's answers, and
//! property-tested against a fake store (`properties`).
//!
//! The store keeps each node's lease expiry by **its own** clock. A renewal sent at local
//! time `t` that succeeds set the expiry to at least the store's time when it ran plus
//! the lease, which is no earlier than `t + lease` on our clock (clocks run at the same
//! rate; their offsets do not matter). So the node may act until `t + lease`, and stops
//! a margin before: no other node takes its runs over before the store's expiry, which
//! comes later. A node that cannot renew in time **fences itself**: it stops acting for
//! every run and joins again under a new incarnation.

/// Milliseconds on the node's monotonic clock.
pub type Millis = u64;

/// How often a node renews and how long a renewal lasts (`cluster.heartbeat_ms`,
/// `cluster.lease_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    pub heartbeat_ms: Millis,
    pub lease_ms: Millis,
}

impl LeaseTimes {
    /// How long before its lease runs out a node stops acting: one heartbeat, so that a
    /// renewal that is merely slow does not leave it acting on a lapsed lease.
    pub fn margin_ms(&self) -> Millis {
        self.heartbeat_ms
    }
}

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not (yet, or no longer) a member: registering is the next step.
    Joining,
    /// A member until `valid_until` (less the margin).
    Live {
        incarnation: u64,
        valid_until: Millis,
    },
}

/// What the membership actor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAction {
    /// Register (again) in the store, under a new incarnation.
    Register,
    /// Renew the lease of `incarnation`.
    Renew {
        incarnation: u64,
    },
    /// Stop acting for every run at once: the lease is lost or about to lapse.
    Fence,
    Wait,
}

/// The store's answer to a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease now runs `lease_ms` from when it was asked.
    Extended,
    /// The store no longer has this incarnation live: it was declared dead, its lease
    /// lapsed, or a newer incarnation registered.
    Lost,
    /// No answer (the store is unreachable, or the request timed out).
    Unanswered,
}

#[derive(Debug, Clone)]
pub struct Lease {
    times: LeaseTimes,
    standing: Standing,
    /// When the request in flight (a registration or a renewal) was sent.
    asking_since: Option<Millis>,
}

impl Lease {
    pub fn new(times: LeaseTimes) -> Self {
        Self {
            times,
            standing: Standing::Joining,
            asking_since: None,
        }
    }

    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// Whether the node may act for its runs at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        match self.standing {
            Standing::Joining => false,
            Standing::Live { valid_until, .. } => {
                now.saturating_add(self.times.margin_ms()) < valid_until
            }
        }
    }

    /// Every heartbeat: fence when the lease is about to lapse, else register or renew
    /// unless a request is still out (one at a time; a request out for longer than a
    /// lease counts as unanswered).
    pub fn tick(&mut self, now: Millis) -> LeaseAction {
        if let Standing::Live { .. } = self.standing
            && !self.is_live(now)
        {
            self.standing = Standing::Joining;
            self.asking_since = None;
            return LeaseAction::Fence;
        }
        if let Some(since) = self.asking_since
            && now.saturating_sub(since) < self.times.lease_ms
        {
            return LeaseAction::Wait;
        }
        self.asking_since = Some(now);
        match self.standing {
            Standing::Joining => LeaseAction::Register,
            Standing::Live { incarnation, .. } => LeaseAction::Renew { incarnation },
        }
    }

    /// The store registered the node as `incarnation`, asked at `sent_at`.
    pub fn registered(&mut self, sent_at: Millis, incarnation: u64) {
        self.asking_since = None;
        self.standing = Standing::Live {
            incarnation,
            valid_until: sent_at.saturating_add(self.times.lease_ms),
        };
    }

    /// A registration that failed: the next tick tries again.
    pub fn not_registered(&mut self) {
        self.asking_since = None;
    }

    /// The store's answer to the renewal of `incarnation` sent at `sent_at`. An answer
    /// about an incarnation the node has left behind changes nothing.
    pub fn renewed(&mut self, sent_at: Millis, incarnation: u64, renewal: Renewal) -> LeaseAction {
        let Standing::Live {
            incarnation: current,
            valid_until,
        } = self.standing
        else {
            return LeaseAction::Wait;
        };
        if current != incarnation {
            return LeaseAction::Wait;
        }
        self.asking_since = None;
        match renewal {
            Renewal::Extended => {
                self.standing = Standing::Live {
                    incarnation,
                    valid_until: valid_until.max(sent_at.saturating_add(self.times.lease_ms)),
                };
                LeaseAction::Wait
            }
            Renewal::Lost => {
                self.standing = Standing::Joining;
                LeaseAction::Fence
            }
            Renewal::Unanswered => LeaseAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: LeaseTimes = LeaseTimes {
        heartbeat_ms: 1_000,
        lease_ms: 5_000,
    };

    #[test]
    fn a_node_registers_renews_and_acts_until_a_margin_before_its_lease_ends() {
        let mut lease = Lease::new(TIMES);
        assert_eq!(lease.tick(0), LeaseAction::Register);
        assert_eq!(lease.tick(500), LeaseAction::Wait, "one request at a time");
        lease.registered(0, 7);
        assert!(lease.is_live(3_999) && !lease.is_live(4_000));
        assert_eq!(lease.tick(1_000), LeaseAction::Renew { incarnation: 7 });
        assert_eq!(
            lease.renewed(1_000, 7, Renewal::Extended),
            LeaseAction::Wait
        );
        assert!(lease.is_live(4_999) && !lease.is_live(5_000));
    }

    #[test]
    fn a_node_that_cannot_renew_fences_itself_and_joins_again() {
        let mut lease = Lease::new(TIMES);
        lease.tick(0);
        lease.registered(0, 1);
        for now in [1_000, 2_000, 3_000] {
            let action = lease.tick(now);
            assert!(matches!(
                action,
                LeaseAction::Renew { .. } | LeaseAction::Wait
            ));
            lease.renewed(now, 1, Renewal::Unanswered);
        }
        assert_eq!(lease.tick(4_000), LeaseAction::Fence);
        assert!(!lease.is_live(4_000));
        assert_eq!(lease.tick(5_000), LeaseAction::Register);
    }

    #[test]
    fn a_lost_lease_fences_at_once_and_a_stale_answer_changes_nothing() {
        let mut lease = Lease::new(TIMES);
        lease.tick(0);
        lease.registered(0, 1);
        lease.tick(1_000);
        assert_eq!(lease.renewed(1_000, 1, Renewal::Lost), LeaseAction::Fence);
        lease.tick(1_100);
        lease.registered(1_100, 2);
        assert_eq!(lease.renewed(900, 1, Renewal::Extended), LeaseAction::Wait);
        assert_eq!(
            lease.standing(),
            Standing::Live {
                incarnation: 2,
                valid_until: 6_100
            }
        );
    }

    #[test]
    fn a_pause_longer_than_the_lease_fences_on_the_first_tick_after_it() {
        let mut lease = Lease::new(TIMES);
        lease.tick(0);
        lease.registered(0, 1);
        assert!(!lease.is_live(60_000), "not live even before it ticks");
        assert_eq!(lease.tick(60_000), LeaseAction::Fence);
    }
}
