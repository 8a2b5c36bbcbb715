"""The OPL-Lang language server (``opl lsp``) and the editor features it serves.

`analysis` checks a document with the checker behind `opl check`; `docs`, `hover`,
`completion` and `outline` answer the editor's questions from the language reference
and the syntax tree in code points; `server` is the pygls wiring and the only module
that knows LSP types and position encodings. None of them imports numpy: only a hover
that prices a leg loads the compiler.
"""
