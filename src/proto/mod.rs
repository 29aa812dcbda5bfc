//! The contract between the orchestrator and a sandbox's init, in one place:
//!
//! - [`Spec`]: what a sandbox is made of, with typed fields, and its wire form for the
//!   launcher ([`wire`]);
//! - [`Plan`]: the fd layout and the C pointer arrays the child needs, built from a spec and
//!   its fds before the clone;
//! - [`report`]: the init's messages to the orchestrator (a step failed, the command was
//!   executed, the command ended), with a sending end for the child and an async receiving
//!   end for the orchestrator;
//! - [`control`]: the orchestrator's messages to the init (go, signal, kill), likewise.
//!
//! Nothing outside this module reads or writes the protocol's bytes.

pub(crate) mod control;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod spec;
pub(crate) mod wire;

pub(crate) use plan::Plan;
pub(crate) use spec::Spec;
