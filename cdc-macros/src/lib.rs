//! `include_migrations!` (being built: see the embedding issue).
