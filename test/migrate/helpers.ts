/**
 * Test helpers for the import and doctor tests: a fake Context (fixed clock, no network unless
 * given, captured progress and log lines), a temporary folder, and a self-signed certificate.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID, webcrypto } from "node:crypto";
import type { Context, Env } from "../../src/core/context.js";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

export interface FakeContext extends Context {
  /** Everything written to progress and the logger. */
  lines: string[];
}

export function fakeContext(
  options: { home: string; env?: Env; nowMs?: number; fetch?: typeof fetch } = { home: "/nonexistent" },
): FakeContext {
  const lines: string[] = [];
  const now = options.nowMs ?? Date.UTC(2026, 0, 15, 12, 0, 0);
  return {
    lines,
    clock: { now: () => now, sleep: () => Promise.resolve() },
    fetch:
      options.fetch ??
      (() => Promise.reject(new Error("this test has no network: pass a fetch to fakeContext"))),
    env: options.env ?? {},
    paths: {
      home: options.home,
      configDir: join(options.home, ".config", "azkeep"),
      runtimeDir: join(options.home, "run"),
    },
    random: { bytes: (n) => new Uint8Array(randomBytes(n)), uuid: () => randomUUID() },
    logger: {
      debug: (m) => lines.push(`DEBUG: ${m}`),
      info: (m) => lines.push(`INFO: ${m}`),
      warn: (m) => lines.push(`WARNING: ${m}`),
    },
    prompter: {
      interactive: false,
      ask: () => Promise.reject(new Error("no prompts in tests")),
      readStdin: () => Promise.resolve(""),
    },
    browser: { open: () => Promise.resolve(false) },
    progress: { status: (m) => lines.push(m), message: (m) => lines.push(m), terminal: false },
    color: false,
  };
}

/** A temporary folder, removed on dispose. */
export function tempDir(prefix = "azkeep-d-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** A PEM with an unencrypted EC private key followed by its self-signed certificate (az's format). */
export async function selfSignedPem(cn = "azkeep-test-sp"): Promise<string> {
  x509.cryptoProvider.set(webcrypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${cn}`,
    notBefore: new Date(Date.UTC(2025, 0, 1)),
    notAfter: new Date(Date.UTC(2035, 0, 1)),
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END PRIVATE KEY-----\n`;
  return keyPem + cert.toString("pem") + "\n";
}
