//! The seccomp filter every jailed command runs under: a deny-list of the system calls
//! that reach kernel state shared with the host (namespaces and mounts, keyrings, BPF,
//! modules, the clock, tracing other processes), in the classic BPF form bubblewrap's
//! `--seccomp FD` loads. Everything else is allowed: test suites and linters need the
//! ordinary calls, and the walls are the namespaces and the unprivileged user; this only
//! narrows what a kernel bug could be reached through.
//!
//! A call from another architecture's table (32-bit calls on x86_64, x32) kills the
//! process: the deny-list is written in this architecture's numbers only.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

use libc::{c_long, sock_filter};

use crate::errors::AgentError;

/// `AUDIT_ARCH_*` of the architecture the filter's numbers belong to.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// The x32 ABI's calls carry this bit in their number on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Denied with EPERM.
const DENIED: &[c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

// The fields of `struct seccomp_data` the filter reads.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// The low 32 bits of the first argument (clone's flags).
#[cfg(target_endian = "little")]
const ARG0_LOW_OFFSET: u32 = 16;
#[cfg(target_endian = "big")]
const ARG0_LOW_OFFSET: u32 = 20;

fn load(offset: u32) -> sock_filter {
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn statement(code: u32, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        // BPF opcodes are 16 bits wide; libc declares the constants as u32.
        code: code as u16,
        jt,
        jf,
        k,
    }
}

fn ret(action: u32) -> sock_filter {
    statement(libc::BPF_RET | libc::BPF_K, action)
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> sock_filter {
    jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, jt, jf)
}

/// The filter program. Jumps are relative, so the deny return is placed last and each
/// comparison jumps the distance to it.
pub(crate) fn program() -> Vec<sock_filter> {
    let errno = |code: i32| libc::SECCOMP_RET_ERRNO | (code as u32 & libc::SECCOMP_RET_DATA);
    let mut program = vec![
        load(ARCH_OFFSET),
        jump_if_equal(AUDIT_ARCH, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(NR_OFFSET),
    ];
    // Placeholders for the jumps to the deny return, filled in once its place is known.
    let mut to_deny = Vec::new();
    to_deny.push(program.len());
    program.push(jump(
        libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
        X32_SYSCALL_BIT,
        0,
        0,
    ));
    for &number in DENIED {
        to_deny.push(program.len());
        program.push(jump_if_equal(number as u32, 0, 0));
    }
    // clone: allowed unless it asks for a new user namespace.
    program.push(jump_if_equal(libc::SYS_clone as u32, 0, 3));
    program.push(load(ARG0_LOW_OFFSET));
    to_deny.push(program.len());
    program.push(jump(
        libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
        libc::CLONE_NEWUSER as u32,
        0,
        0,
    ));
    program.push(ret(libc::SECCOMP_RET_ALLOW));
    // clone3's flags sit behind a pointer the filter cannot read: ENOSYS makes the C
    // library fall back to clone, which the filter can check.
    program.push(jump_if_equal(libc::SYS_clone3 as u32, 0, 1));
    program.push(ret(errno(libc::ENOSYS)));
    program.push(ret(libc::SECCOMP_RET_ALLOW));
    let deny = program.len();
    program.push(ret(errno(libc::EPERM)));
    for at in to_deny {
        // Every jump is forward and the program is far shorter than 256 instructions.
        program[at].jt = (deny - at - 1) as u8;
    }
    program
}

/// The program written into a pipe whose read end bubblewrap is given: the end to pass
/// (close-on-exec; the jail clears that in the child only).
pub(crate) fn program_pipe() -> Result<OwnedFd, AgentError> {
    // The same for every command: built and encoded once per process.
    static ENCODED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        program()
            .iter()
            .flat_map(|instruction| {
                let mut encoded = Vec::with_capacity(8);
                encoded.extend_from_slice(&instruction.code.to_ne_bytes());
                encoded.push(instruction.jt);
                encoded.push(instruction.jf);
                encoded.extend_from_slice(&instruction.k.to_ne_bytes());
                encoded
            })
            .collect()
    });
    let bytes = ENCODED.as_slice();
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(pipe_error(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // A few hundred bytes: far below the pipe's buffer, so this cannot block.
    std::fs::File::from(write)
        .write_all(bytes)
        .map_err(pipe_error)?;
    Ok(read)
}

fn pipe_error(error: std::io::Error) -> AgentError {
    AgentError::Io(format!("passing the seccomp filter to bubblewrap: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program_and_it_ends_returning() {
        let program = program();
        assert!(program.len() < 256);
        for (at, instruction) in program.iter().enumerate() {
            if u32::from(instruction.code) & 0x07 == libc::BPF_JMP {
                assert!(at + 1 + usize::from(instruction.jt) < program.len());
                assert!(at + 1 + usize::from(instruction.jf) < program.len());
            }
        }
        let last = program.last().unwrap();
        assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
        assert_eq!(last.k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }

    #[test]
    fn each_denied_call_jumps_to_the_eperm_return() {
        let program = program();
        let deny = program.len() - 1;
        for &number in DENIED {
            let at = program
                .iter()
                .position(|i| {
                    u32::from(i.code) == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K
                        && i.k == number as u32
                })
                .unwrap();
            assert_eq!(at + 1 + usize::from(program[at].jt), deny, "{number}");
        }
    }
}
