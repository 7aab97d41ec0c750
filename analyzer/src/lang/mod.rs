//! The NF language front end: lexer, parser, checker and the checked IR.
//!
//! Pipeline: [`lexer`] → [`parser`] (AST, [`ast`]) → [`check`] (checked IR, [`ir`]).
//! [`types`] and [`ops`] hold the value model and the meaning of the pure operators,
//! shared with the interpreter.

pub mod ast;
pub mod check;
pub mod diag;
pub mod init_file;
pub mod ir;
pub mod lexer;
pub mod ops;
pub mod parser;
pub mod types;
