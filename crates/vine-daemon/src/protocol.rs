//! Transitional old name of [`crate::api`], for the runtime files that
//! still say `crate::protocol`. Delete this file (and `mod protocol;` in
//! lib.rs) once they say `crate::api`.

pub(crate) use crate::api::*;
