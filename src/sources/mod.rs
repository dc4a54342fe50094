//! Producers into the stream that run inside Pulse: the synthetic demo feed behind
//! `serve --demo` and `pulse generate`.

pub mod demo;
