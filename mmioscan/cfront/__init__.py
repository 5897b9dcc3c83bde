"""C front end: one source file's bytes -> FileFacts (tree-sitter-c, plus a lexer for macros)."""
