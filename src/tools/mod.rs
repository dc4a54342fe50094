//! The command-line tools beside the server: `pulse bench` (every benchmark, against the real
//! services) and `pulse eval` (the analyzers and the virality model on labelled data).

pub mod bench;
pub mod eval;
