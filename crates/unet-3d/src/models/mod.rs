//! The 3D reproductions.
