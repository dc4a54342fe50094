//! Argon2 verification on threads of its own. Each check needs 19 MiB of working memory (the
//! default parameters); made on the runtime's blocking threads, every thread's allocator arena
//! kept its own copy, and a flood of guesses grew the process by hundreds of megabytes. Here a
//! fixed number of threads each keep one buffer and reuse it, so verification costs
//! [`THREADS`] buffers whatever the load, and a full queue answers at once instead of growing.
//! The threads run at the lowest priority (nice 19): checks take the CPU the pipeline leaves,
//! never the pipeline's. One network holds at most [`PER_NETWORK`] of the queue's places, so a
//! flood of guesses from one network leaves the rest to everyone else's keys.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Threads verifying at once: each check takes tens of milliseconds of a core, and keys
/// presented directly are checked once per five minutes, tokens never.
pub const THREADS: usize = 1;
/// Checks waiting for a thread; past it a check is refused as busy.
const QUEUE: usize = 64;
/// Places in the queue one client network may hold at once (a network's request burst is
/// larger than the whole queue).
pub const PER_NETWORK: usize = QUEUE / 4;
/// Largest memory a stored hash may ask for, in KiB (Argon2's `m`): a hash with more is not
/// ours, and checking it would allocate whatever it names.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

struct Job {
    secret: String,
    hash: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// The verification threads.
pub struct Verifier {
    jobs: SyncSender<Job>,
    /// Checks given a turn and not yet answered (see [`Verifier::turn`]).
    admitted: Arc<Mutex<Admitted>>,
}

/// Turns held, in all and per network (a network holding none has no entry).
#[derive(Default)]
struct Admitted {
    total: usize,
    by_network: HashMap<String, usize>,
}

/// One check's place, held from before its key is looked up until it is answered.
pub struct Turn {
    admitted: Arc<Mutex<Admitted>>,
    network: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        admitted.total -= 1;
        if let Some(held) = admitted.by_network.get_mut(&self.network) {
            *held -= 1;
            if *held == 0 {
                admitted.by_network.remove(&self.network);
            }
        }
    }
}

/// Why a check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    /// Starts [`THREADS`] threads.
    pub fn start() -> std::io::Result<Verifier> {
        let (jobs, queue) = sync_channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                            queue.recv()
                        };
                        let Ok(job) = job else { return };
                        let matches = verify_with(&job.secret, &job.hash, &mut memory);
                        let _ = job.reply.send(matches);
                    }
                })?;
        }
        Ok(Verifier {
            jobs,
            admitted: Arc::default(),
        })
    }

    /// A place for one check of a key presented from `network`, taken before anything is
    /// read for it: a flood of guesses past what the threads can check is answered busy
    /// before each one costs a read of the key's hash from PostgreSQL, not after; and one
    /// network past [`PER_NETWORK`] places is answered busy while others still get theirs.
    pub fn turn(&self, network: &str) -> Result<Turn, Busy> {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let held = admitted.by_network.get(network).copied().unwrap_or(0);
        if admitted.total >= QUEUE || held >= PER_NETWORK {
            return Err(Busy);
        }
        admitted.total += 1;
        *admitted.by_network.entry(network.to_string()).or_insert(0) += 1;
        Ok(Turn {
            admitted: self.admitted.clone(),
            network: network.to_string(),
        })
    }

    /// Whether `secret` matches the PHC string `hash`; `Err` when every thread is busy and the
    /// queue is full.
    pub async fn verify(&self, secret: String, hash: String) -> Result<bool, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.jobs.try_send(Job {
            secret,
            hash,
            reply,
        }) {
            Ok(()) => Ok(answer.await.unwrap_or(false)),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

/// Makes the calling thread the last to get a core (nice 19). Raising one's own nice value
/// needs no privilege.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes its
    // scheduling priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Whether `secret` matches the PHC string `hash` (as [`super::keys::hash_secret`] writes
/// them), with `memory` as Argon2's working memory, grown once to what the hash needs and
/// reused.
pub fn verify_with(secret: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        secret.as_bytes(),
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_what_the_key_store_hashes_reusing_its_memory() {
        let hash = super::super::keys::hash_secret("s3cret").unwrap();
        let mut memory = Vec::new();
        assert!(verify_with("s3cret", &hash, &mut memory));
        let grown = memory.len();
        assert!(grown > 0);
        assert!(!verify_with("s3cre7", &hash, &mut memory));
        assert_eq!(memory.len(), grown, "the buffer is reused, not regrown");
        assert!(!verify_with("s3cret", "not a hash", &mut memory));
        // A hash asking for more memory than any of ours is refused without allocating it.
        let greedy = hash.replace("m=19456", "m=4000000");
        assert_ne!(greedy, hash);
        assert!(!verify_with("s3cret", &greedy, &mut memory));
        assert_eq!(memory.len(), grown);
    }

    #[tokio::test]
    async fn the_threads_answer_checks() {
        let verifier = Verifier::start().unwrap();
        let hash = super::super::keys::hash_secret("k").unwrap();
        assert_eq!(verifier.verify("k".into(), hash.clone()).await, Ok(true));
        assert_eq!(verifier.verify("j".into(), hash).await, Ok(false));
    }

    #[test]
    fn turns_are_as_many_as_the_queue_and_come_back() {
        let verifier = Verifier::start().unwrap();
        let turns: Vec<Turn> = (0..QUEUE)
            .map(|n| verifier.turn(&format!("net-{}", n % 8)).unwrap())
            .collect();
        assert!(verifier.turn("net-9").is_err(), "a turn past the queue");
        drop(turns);
        assert!(verifier.turn("net-9").is_ok(), "the turns came back");
    }

    /// One network asking for every place got them all, and every other network's keys were
    /// answered busy until its guesses were checked.
    #[test]
    fn one_network_holds_a_share_of_the_queue_and_gives_it_back() {
        let verifier = Verifier::start().unwrap();
        let flood: Vec<Turn> = std::iter::from_fn(|| verifier.turn("203.0.113.0/24").ok())
            .take(QUEUE + 1)
            .collect();
        assert_eq!(flood.len(), PER_NETWORK);
        let others: Vec<Turn> = (0..QUEUE - PER_NETWORK)
            .map(|n| verifier.turn(&format!("198.51.{n}.0/24")).unwrap())
            .collect();
        assert!(verifier.turn("192.0.2.0/24").is_err(), "the queue is full");
        drop(flood);
        assert!(verifier.turn("203.0.113.0/24").is_ok());
        assert!(verifier.admitted.lock().unwrap().by_network.len() <= others.len() + 1);
        drop(others);
        let admitted = verifier.admitted.lock().unwrap();
        assert_eq!(admitted.total, 0);
        assert!(
            admitted.by_network.is_empty(),
            "no network is remembered holding nothing"
        );
    }
}
