// The VS Code client of `opl lsp`: starts the server over stdio for .opl files and tells it when a
// configuration file (opl.toml, pyproject.toml) changes. Everything else is the server's.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("opl").get("server.command", ["opl", "lsp"]);
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "opl" }, { scheme: "untitled", language: "opl" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/{opl.toml,pyproject.toml}") },
  };
  client = new LanguageClient("opl", "OPL-Lang", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
