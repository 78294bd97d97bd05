//! The supervisor restarting, escalating and stopping real ractor actors.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshot};

use super::*;

/// A child that panics on `Crash` and counts its starts.
struct Fragile {
    starts: Arc<AtomicU32>,
}

#[derive(RactorMessage)]
enum FragileMsg {
    Crash,
}

impl Actor for Fragile {
    type Msg = FragileMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<FragileMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<FragileMsg>,
        message: FragileMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            FragileMsg::Crash => panic!("deliberate crash"),
        }
    }
}

fn fragile_spec(name: &'static str, starts: Arc<AtomicU32>) -> ChildSpec {
    ChildSpec::new(name, move |supervisor| {
        let starts = starts.clone();
        async move {
            let (actor, _) =
                Actor::spawn_linked(Some(name.to_string()), Fragile { starts }, (), supervisor)
                    .await?;
            Ok(actor.get_cell())
        }
    })
}

async fn crash(name: &str) {
    for _ in 0..200 {
        if let Some(cell) = ractor::registry::where_is(name) {
            let actor: ActorRef<FragileMsg> = cell.into();
            if actor.cast(FragileMsg::Crash).is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never came back");
}

async fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 3 s");
}

#[tokio::test]
async fn a_panicking_child_is_restarted() {
    let starts = Arc::new(AtomicU32::new(0));
    let policy = RestartPolicy {
        max_restarts: 3,
        period: Duration::from_secs(60),
    };
    let (supervisor, _) = Actor::spawn(
        None,
        Supervisor,
        Supervisor::args(
            policy,
            vec![fragile_spec("fragile-restart", starts.clone())],
        ),
    )
    .await
    .unwrap();
    crash("fragile-restart").await;
    wait_for(|| starts.load(Ordering::SeqCst) == 2).await;
    let restarts = ractor::call!(supervisor, SupervisorMsg::GetRestartCount).unwrap();
    assert_eq!(restarts, 1);
    supervisor.stop(None);
}

/// The parent of the supervisor under test: records what reaches it.
struct Parent {
    failures: Arc<AtomicU32>,
}

impl Actor for Parent {
    type Msg = SupervisorMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SupervisorMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(_, error) = event {
            assert!(
                error.to_string().contains("failed more than 2 times"),
                "{error}"
            );
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The counters labelled `supervisor="root"` in `snapshot`, by name.
fn root_counters(snapshot: Snapshot) -> Vec<(String, u64)> {
    let mut counters: Vec<(String, u64)> = snapshot
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key();
            let root = key
                .labels()
                .any(|label| label.key() == "supervisor" && label.value() == "root");
            match value {
                DebugValue::Counter(count) if root => Some((key.name().to_string(), count)),
                _ => None,
            }
        })
        .collect();
    counters.sort();
    counters
}

/// A crash loop restarts its child up to the policy's limit, then escalates; the
/// restarts and the give-up are counted for `/metrics`.
#[tokio::test]
async fn a_crash_loop_beyond_the_limit_escalates_to_the_parent() {
    let recorder = DebuggingRecorder::new();
    let snapshot = recorder.snapshotter();
    // Each test is a process of its own under nextest: this recorder is this test's.
    recorder.install().unwrap();
    let starts = Arc::new(AtomicU32::new(0));
    let failures = Arc::new(AtomicU32::new(0));
    let (parent, _) = Actor::spawn(
        None,
        Parent {
            failures: failures.clone(),
        },
        (),
    )
    .await
    .unwrap();
    let policy = RestartPolicy {
        max_restarts: 2,
        period: Duration::from_secs(60),
    };
    let args = Supervisor::args(policy, vec![fragile_spec("fragile-loop", starts.clone())]);
    Actor::spawn_linked(None, Supervisor, args, parent.get_cell())
        .await
        .unwrap();
    for crashes in 1..=3 {
        crash("fragile-loop").await;
        if crashes < 3 {
            wait_for(|| starts.load(Ordering::SeqCst) == crashes + 1).await;
        }
    }
    wait_for(|| failures.load(Ordering::SeqCst) == 1).await;
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "no restart after the limit"
    );
    // One snapshot: taking one resets the counters it read.
    assert_eq!(
        root_counters(snapshot.snapshot()),
        [
            (crate::children::GIVE_UPS.to_string(), 1),
            (crate::children::RESTARTS.to_string(), 2)
        ]
    );
    parent.stop(None);
}

#[tokio::test]
async fn a_child_ref_follows_the_child_across_restarts() {
    let starts = Arc::new(AtomicU32::new(0));
    let handle: ChildRef<FragileMsg> = ChildRef::default();
    assert!(handle.get().is_none(), "nothing started yet");
    let spec = {
        let starts = starts.clone();
        ChildSpec::with_ref("fragile-ref", handle.clone(), move |supervisor| {
            let starts = starts.clone();
            async move {
                Ok(
                    Actor::spawn_linked(None, Fragile { starts }, (), supervisor)
                        .await?
                        .0,
                )
            }
        })
    };
    let policy = RestartPolicy {
        max_restarts: 3,
        period: Duration::from_secs(60),
    };
    let (supervisor, _) = Actor::spawn(None, Supervisor, Supervisor::args(policy, vec![spec]))
        .await
        .unwrap();
    let first = handle.get().expect("the first incarnation");
    first.cast(FragileMsg::Crash).unwrap();
    wait_for(|| starts.load(Ordering::SeqCst) == 2).await;
    wait_for(|| {
        handle
            .get()
            .is_some_and(|now| now.get_id() != first.get_id())
    })
    .await;
    assert!(
        handle.get().unwrap().cast(FragileMsg::Crash).is_ok(),
        "the new incarnation takes messages through the same handle"
    );
    supervisor.stop(None);
}
