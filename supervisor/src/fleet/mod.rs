//! The fleet: channels that survive the loss of a whole box, with
//! leadership on etcd (issue 15, in progress). So far only `placement`,
//! the pure assignment of channels to nodes every box computes alike.

pub mod placement;
