//! Argon2 verification on threads of its own. Each check needs 19 MiB of working memory (the
//! default parameters); made on the runtime's blocking threads, every thread's allocator arena
//! kept its own copy, and a flood of guesses grew the process by hundreds of megabytes. Here a
//! fixed number of threads each keep one buffer and reuse it, so verification costs
//! [`THREADS`] buffers whatever the load, and a full queue answers at once instead of growing.
//! The threads run at the lowest priority (nice 19): checks take the CPU the pipeline leaves,
//! never the pipeline's.
//!
//! The queue is shared out so that guesses cannot keep real keys out: one network holds at
//! most [`PER_NETWORK`] of its places; keys whose id the key table does not hold (every
//! made-up key) hold at most [`GUESSES`] of them all together, however many networks send
//! them, and are checked only when no key of a known id waits; one known id holds at most
//! [`PER_KEY`] of the known ids' places (its own requests share one check, so more are
//! guesses at its secret), its checks past them taken as guesses are.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::models::places::{Place, Places};

/// Threads verifying at once: each check takes tens of milliseconds of a core, and keys
/// presented directly are checked once per five minutes, tokens never.
pub const THREADS: usize = 1;
/// Checks waiting for a thread; past it a check is refused as busy.
const QUEUE: usize = 64;
/// Places in the queue one client network may hold at once (a network's request burst is
/// larger than the whole queue).
pub const PER_NETWORK: usize = QUEUE / 4;
/// Places keys of unknown ids hold together: a few networks' guesses filled the whole queue
/// (each network within its share), and every real key was answered busy while they lasted.
pub const GUESSES: usize = QUEUE / 2;
/// Places of the known ids' one known id holds at once; its further checks count as guesses.
pub const PER_KEY: usize = 2;
/// Largest memory a stored hash may ask for, in KiB (Argon2's `m`): a hash with more is not
/// ours, and checking it would allocate whatever it names.
const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// Whose key a check is for, as the key table in memory knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// An id the key table holds.
    Known(&'a str),
    /// An id it does not hold: made up, or created by another process since the table was
    /// last read.
    Unknown,
}

struct Job {
    secret: String,
    hash: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// Checks waiting: those of known ids are taken first.
#[derive(Default)]
struct Waiting {
    known: VecDeque<Job>,
    unknown: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    ready: Condvar,
}

impl Queue {
    fn next(&self) -> Option<Job> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if waiting.closed {
                return None;
            }
            if let Some(job) = waiting.known.pop_front() {
                return Some(job);
            }
            if let Some(job) = waiting.unknown.pop_front() {
                return Some(job);
            }
            waiting = self
                .ready
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The verification threads.
pub struct Verifier {
    queue: Arc<Queue>,
    /// Checks given a turn and not yet answered (see [`Verifier::turn`]).
    admitted: Arc<Mutex<Admitted>>,
    /// Their places per client network, at most [`PER_NETWORK`] each.
    networks: Arc<Places>,
    /// Their places per known key id, at most [`PER_KEY`] each.
    keys: Arc<Places>,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let mut waiting = self
            .queue
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        waiting.closed = true;
        self.queue.ready.notify_all();
    }
}

/// Turns held: in all, and of unknown ids.
#[derive(Default)]
struct Admitted {
    total: usize,
    unknown: usize,
}

/// One check's place, held from before its key is looked up until it is answered.
pub struct Turn {
    admitted: Arc<Mutex<Admitted>>,
    _network: Place,
    key: Option<Place>,
}

impl Turn {
    /// Whether the check is for a known id: it is queued before every unknown one.
    pub fn known(&self) -> bool {
        self.key.is_some()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        admitted.total -= 1;
        if self.key.is_none() {
            admitted.unknown -= 1;
        }
    }
}

/// Why a check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    /// Starts [`THREADS`] threads.
    pub fn start() -> std::io::Result<Verifier> {
        let queue = Arc::new(Queue::default());
        for n in 0..THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory: Vec<Block> = Vec::new();
                    while let Some(job) = queue.next() {
                        let matches = verify_with(&job.secret, &job.hash, &mut memory);
                        let _ = job.reply.send(matches);
                    }
                })?;
        }
        Ok(Verifier {
            queue,
            admitted: Arc::default(),
            networks: Places::new(PER_NETWORK),
            keys: Places::new(PER_KEY),
        })
    }

    /// A place for one check of a key presented from `network`, taken before anything is
    /// read for it: a flood of guesses past what the threads can check is answered busy
    /// before each one costs a read of the key's hash from PostgreSQL, not after; and a
    /// network past [`PER_NETWORK`] places and unknown ids past [`GUESSES`] are answered busy
    /// while others still get theirs (a known id past [`PER_KEY`] counts among the guesses).
    pub fn turn(&self, network: &str, presented: Presented<'_>) -> Result<Turn, Busy> {
        let network = self.networks.take(network).ok_or(Busy)?;
        // A known id past its places is checked as a guess is: whoever knows an id (a token
        // names it) could otherwise hold its places with wrong secrets and keep its holder out.
        let key = match presented {
            Presented::Known(key) => self.keys.take(key),
            Presented::Unknown => None,
        };
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if admitted.total >= QUEUE || (key.is_none() && admitted.unknown >= GUESSES) {
            return Err(Busy);
        }
        admitted.total += 1;
        admitted.unknown += usize::from(key.is_none());
        Ok(Turn {
            admitted: self.admitted.clone(),
            _network: network,
            key,
        })
    }

    /// Whether `secret` matches the PHC string `hash`, checked before every check of an unknown
    /// id when `known`; `Err` when the queue is full.
    pub async fn verify(&self, secret: String, hash: String, known: bool) -> Result<bool, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let mut waiting = self
                .queue
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if waiting.known.len() + waiting.unknown.len() >= QUEUE {
                return Err(Busy);
            }
            let job = Job {
                secret,
                hash,
                reply,
            };
            if known {
                waiting.known.push_back(job);
            } else {
                waiting.unknown.push_back(job);
            }
        }
        self.queue.ready.notify_one();
        Ok(answer.await.unwrap_or(false))
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
        assert_eq!(
            verifier.verify("k".into(), hash.clone(), true).await,
            Ok(true)
        );
        assert_eq!(verifier.verify("j".into(), hash, false).await, Ok(false));
    }

    #[test]
    fn turns_are_as_many_as_the_queue_and_come_back() {
        let verifier = Verifier::start().unwrap();
        let ids: Vec<String> = (0..QUEUE).map(|n| format!("key-{n}")).collect();
        let turns: Vec<Turn> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let network = format!("net-{}", n % 8);
                verifier.turn(&network, Presented::Known(id)).unwrap()
            })
            .collect();
        assert!(verifier.turn("net-9", Presented::Known("key-x")).is_err());
        drop(turns);
        assert!(verifier.turn("net-9", Presented::Known("key-x")).is_ok());
    }

    /// One network asking for every place got them all, and every other network's keys were
    /// answered busy until its guesses were checked.
    #[test]
    fn one_network_holds_a_share_of_the_queue_and_gives_it_back() {
        let verifier = Verifier::start().unwrap();
        let flood: Vec<Turn> =
            std::iter::from_fn(|| verifier.turn("203.0.113.0/24", Presented::Unknown).ok())
                .take(QUEUE + 1)
                .collect();
        assert_eq!(flood.len(), PER_NETWORK);
        let ids: Vec<String> = (0..QUEUE).map(|n| format!("key-{n}")).collect();
        let others: Vec<Turn> = (0..QUEUE - PER_NETWORK)
            .map(|n| {
                let network = format!("198.51.{n}.0/24");
                verifier.turn(&network, Presented::Known(&ids[n])).unwrap()
            })
            .collect();
        let full = verifier.turn("192.0.2.0/24", Presented::Known("key-x"));
        assert!(full.is_err(), "the queue is full");
        drop(flood);
        assert!(verifier.turn("203.0.113.0/24", Presented::Unknown).is_ok());
        assert!(verifier.networks.keys() <= others.len() + 1);
        drop(others);
        let admitted = verifier.admitted.lock().unwrap();
        assert_eq!((admitted.total, admitted.unknown), (0, 0));
        assert!(
            verifier.networks.keys() == 0 && verifier.keys.keys() == 0,
            "no network or key is remembered holding nothing"
        );
    }

    /// Guesses from four networks, each within its share, held every place of the queue, and
    /// every real key was answered busy until they stopped. Now they hold half of it, a known
    /// id is checked before any of them, and one known id holds two places.
    #[test]
    fn guesses_from_many_networks_leave_real_keys_their_places_and_turn() {
        let verifier = Verifier::start().unwrap();
        let guesses: Vec<Turn> = (0..8)
            .flat_map(|n| {
                let network = format!("2001:db8:{n}::/64");
                let verifier = &verifier;
                std::iter::from_fn(move || verifier.turn(&network, Presented::Unknown).ok())
                    .take(QUEUE)
            })
            .collect();
        assert_eq!(
            guesses.len(),
            GUESSES,
            "unknown ids hold their share, not more"
        );
        let real = verifier.turn("2001:db8:7::/64", Presented::Known("0123456789ab"));
        assert!(
            real.is_ok(),
            "a known id is checked while guesses hold their share"
        );
        let guess = verifier.turn("2001:db8:7::/64", Presented::Unknown);
        assert!(guess.is_err(), "one more guess from a network with none");
        let second = verifier.turn("198.51.100.0/24", Presented::Known("0123456789ab"));
        assert!(second.as_ref().is_ok_and(Turn::known));
        // Past its places, the id's checks are guesses: here, with the guesses' share full,
        // refused; with room in it, taken after every known id's.
        let third = verifier.turn("198.51.100.0/24", Presented::Known("0123456789ab"));
        assert!(third.is_err(), "one id holds {PER_KEY} places");
        drop(guesses);
        let third = verifier.turn("198.51.100.0/24", Presented::Known("0123456789ab"));
        assert!(third.is_ok_and(|t| !t.known()), "past its places, a guess");
    }

    /// Queued behind guesses, a known key's check is the next one made.
    #[test]
    fn a_known_keys_check_is_taken_before_every_guess() {
        let queue = Queue::default();
        let job = |secret: &str| Job {
            secret: secret.into(),
            hash: String::new(),
            reply: tokio::sync::oneshot::channel().0,
        };
        {
            let mut waiting = queue.waiting.lock().unwrap();
            for n in 0..3 {
                waiting.unknown.push_back(job(&format!("guess-{n}")));
            }
            waiting.known.push_back(job("real"));
        }
        let taken: Vec<String> = std::iter::from_fn(|| {
            let waiting = queue.waiting.lock().unwrap();
            let more = !waiting.known.is_empty() || !waiting.unknown.is_empty();
            drop(waiting);
            more.then(|| queue.next().unwrap().secret)
        })
        .collect();
        assert_eq!(taken, ["real", "guess-0", "guess-1", "guess-2"]);
        queue.waiting.lock().unwrap().closed = true;
        assert!(queue.next().is_none(), "a closed queue ends its threads");
    }
}
