//! The suites that run Pulse as child processes (`pulse serve`) against services of their own
//! or shared ones: durability (a process killed, stopped and its services restarted mid-stream),
//! chaos (faults under load in a group of processes) and scale-out (several processes as one).
//! One binary, so the shared helpers compile and link once for the three.

#[path = "../common/mod.rs"]
mod common;

mod chaos;
mod durability;
mod scale_out;
