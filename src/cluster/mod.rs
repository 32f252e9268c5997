//! The cluster: how the nodes of one PeerLink deployment reach each other. [`link`] carries
//! envelopes between two nodes over an authenticated TCP connection; it knows nothing of
//! membership, rooms or transfers.

pub mod link;
