"""Editor support files: highlighting rules (`highlight`), the Pygments lexer (`lexer`) and the
VS Code extension folder (``vscode/``: manifest, TextMate grammar, the client that starts
``opl lsp``). Shipped as package data so an installed ``opl`` carries them."""
