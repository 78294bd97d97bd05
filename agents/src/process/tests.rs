//! The process runner against real `sh` children: capture bounds, group kills, reaping.

use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::capture::{Capture, Keep};
use super::*;
use crate::errors::AgentError;

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

struct Lines(Vec<String>);

impl LineSink for Lines {
    fn line(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
}

#[tokio::test]
async fn the_head_or_the_tail_is_kept_and_the_sink_sees_every_line() {
    let script = "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2";
    let head = Bounds::head(Duration::from_secs(10), 12);
    let finished = run_bounded(sh(script), &CancellationToken::new(), &head)
        .await
        .unwrap();
    assert_eq!(finished.exit_code, Some(0));
    assert_eq!(finished.stdout.text, "line1\nline2\n");
    assert!(finished.stdout.truncated);
    assert_eq!(
        finished.stderr,
        Captured {
            text: "oops\n".into(),
            truncated: false
        }
    );

    let mut tail = Bounds::tail(Duration::from_secs(10), 6);
    tail.stderr = Capture {
        keep: Keep::Tail,
        max_bytes: 100,
    };
    let (finished, lines) = run_bounded_with_lines(
        sh(script),
        &CancellationToken::new(),
        &tail,
        Some(Lines(Vec::new())),
    )
    .await
    .unwrap();
    assert_eq!(finished.stdout.text, "line5\n");
    assert!(finished.stdout.truncated);
    let lines = lines.expect("the reader ended, so the sink comes back").0;
    assert_eq!(lines[..5], ["line1", "line2", "line3", "line4", "line5"]);
}

#[tokio::test]
async fn what_a_command_leaves_running_is_killed_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let script = format!(
        "(sleep 1; touch {}) >/dev/null 2>&1 & exit 0",
        marker.display()
    );
    let bounds = Bounds::head(Duration::from_secs(10), 1024);
    let finished = run_bounded(sh(&script), &CancellationToken::new(), &bounds)
        .await
        .unwrap();
    assert_eq!(finished.exit_code, Some(0));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "a background child outlived its command");
}

#[tokio::test]
async fn a_timeout_kills_the_group_and_says_so() {
    let started = Instant::now();
    let bounds = Bounds::head(Duration::from_millis(300), 1024);
    let finished = run_bounded(
        sh("echo started; sleep 30"),
        &CancellationToken::new(),
        &bounds,
    )
    .await
    .unwrap();
    assert!(finished.timed_out);
    assert_eq!(finished.exit_code, None);
    assert_eq!(finished.stdout.text, "started\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn cancelling_kills_the_command() {
    let cancel = CancellationToken::new();
    let cancelling = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancelling.cancel();
    });
    let bounds = Bounds::head(Duration::from_secs(30), 1024);
    let error = run_bounded(sh("sleep 30"), &cancel, &bounds)
        .await
        .unwrap_err();
    assert_eq!(error, AgentError::Cancelled);
}

#[tokio::test]
async fn a_killed_child_is_reaped_not_left_a_zombie() {
    let mut child = GroupChild::spawn(sh("sleep 30")).unwrap();
    let pid = child.id().expect("a running child has an id");
    assert!(child.finish().await, "reaped within the bound");
    assert_eq!(child.id(), None, "a reaped group is never signalled again");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} is still in the process table"
    );
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let error = run_bounded(
        Command::new("/no/such/program"),
        &CancellationToken::new(),
        &Bounds::head(Duration::from_secs(1), 10),
    )
    .await
    .unwrap_err();
    let AgentError::Io(message) = error else {
        panic!("expected an Io error, got {error:?}");
    };
    assert!(
        message.starts_with("cannot start `/no/such/program`: "),
        "{message}"
    );
}
