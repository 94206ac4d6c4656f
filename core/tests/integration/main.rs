//! The single integration-test binary of imgest.

mod api;
mod avif;
mod budget;
mod corpus;
mod fixtures;
mod leak;
mod limits;
mod props;
mod webp_chunks;
