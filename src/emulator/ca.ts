/**
 * The emulator's local certificate authority: created on first start with @peculiar/x509 on
 * WebCrypto (no openssl shell-out), kept in the data folder and reused on later starts, so a
 * client that trusts `ca.pem` once keeps trusting the emulator. Each start signs a fresh leaf
 * certificate (kept in memory only) covering loopback and the real Azure host names, which is
 * what lets the CONNECT proxy stand in for login.microsoftonline.com and friends.
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from "node:crypto";
import type { webcrypto as wc } from "node:crypto";
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

const crypto = webcrypto;
x509.cryptoProvider.set(crypto);

const EC: wc.EcKeyGenParams & wc.EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: wc.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY = 24 * 60 * 60 * 1000;
/** A CA this close to expiry is replaced rather than used. */
const CA_RENEW_BEFORE = 30 * DAY;

/**
 * Host names the emulator answers for (TLS certificate and CONNECT proxy). These are the
 * authority, ARM and Graph hosts of the Azure public, China and US Government clouds, which
 * the Azure CLI 2.45, MSAL and the Azure SDKs contact during sign-in and token use, plus
 * Key Vault (a common token audience).
 */
export const AZURE_HOSTS: readonly string[] = [
  // Azure public cloud
  "login.microsoftonline.com",
  "login.windows.net",
  "login.microsoft.com",
  "sts.windows.net",
  "management.azure.com",
  "management.core.windows.net",
  "graph.microsoft.com",
  "graph.windows.net",
  "*.vault.azure.net",
  // Azure China (21Vianet)
  "login.chinacloudapi.cn",
  "management.chinacloudapi.cn",
  "management.core.chinacloudapi.cn",
  "microsoftgraph.chinacloudapi.cn",
  "graph.chinacloudapi.cn",
  "*.vault.azure.cn",
  // Azure US Government
  "login.microsoftonline.us",
  "login-us.microsoftonline.com",
  "management.usgovcloudapi.net",
  "management.core.usgovcloudapi.net",
  "graph.microsoft.us",
  "graph.usgovcloudapi.net",
  "*.vault.usgovcloudapi.net",
];

/** Loopback names the leaf certificate also covers. */
export const LOOPBACK_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** True when `host` (no port, lower or upper case) is one of `patterns`; `*.x` matches one label. */
export function matchesHost(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return patterns.some((p) => {
    if (!p.startsWith("*.")) return p === h;
    const suffix = p.slice(1); // ".vault.azure.net"
    if (!h.endsWith(suffix)) return false;
    // One DNS label: `$kv1.vault.azure.net` is no vault's name (found by an independent oracle).
    const label = h.slice(0, -suffix.length);
    return /^[a-z0-9-]+$/.test(label);
  });
}

export interface LocalCa {
  /** The CA certificate, PEM: what clients trust. */
  certPem: string;
  /** Where that PEM is on disk (give it to REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS). */
  certPath: string;
  cert: x509.X509Certificate;
  key: wc.CryptoKey;
}

export interface ServerCertificate {
  /** PKCS#8 PEM of the leaf's private key (memory only). */
  keyPem: string;
  /** The leaf certificate followed by the CA certificate, PEM. */
  chainPem: string;
  cert: x509.X509Certificate;
}

/** Files in the data folder: the CA key with its certificate (0600), and the certificate alone. */
export const CA_KEY_FILE = "ca-key.pem";
export const CA_CERT_FILE = "ca.pem";

/**
 * Loads the CA kept in `dataDir`, or creates one. The folder is made 0700 and the key file
 * 0600 explicitly (not by umask): whoever reads the CA key can impersonate Azure to every
 * client that trusts it. Safe when two emulators start on the same folder at once: the key
 * file is published with link(), which fails if the other one won.
 */
export async function loadOrCreateCa(dataDir: string, now: Date = new Date()): Promise<LocalCa> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  const keyPath = join(dataDir, CA_KEY_FILE);
  const certPath = join(dataDir, CA_CERT_FILE);

  let ca = await readCa(keyPath, certPath);
  if (ca && ca.cert.notAfter.getTime() - now.getTime() < CA_RENEW_BEFORE) {
    // Expired or about to: keep the old one aside (clients trusting it need to know why) and renew.
    await rename(keyPath, `${keyPath}.expired-${ca.cert.notAfter.toISOString().slice(0, 10)}`);
    ca = undefined;
  }
  if (!ca) {
    const created = await createCa(now);
    const bundle = `${created.keyPem}${created.certPem}`;
    const tmp = `${keyPath}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFileMode(tmp, bundle, 0o600);
    try {
      await link(tmp, keyPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    ca = await readCa(keyPath, certPath);
    if (!ca) throw new Error(`The emulator's CA could not be created in ${dataDir}.`);
  }

  // ca.pem is derived from the key file: rewrite it when missing or different.
  const current = await readFile(certPath, "utf8").catch(() => "");
  if (current !== ca.certPem) {
    const tmp = `${certPath}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFileMode(tmp, ca.certPem, 0o644);
    await rename(tmp, certPath);
  }
  return ca;
}

/** Reads the CA key file; undefined when it does not exist, an error naming the fix when damaged. */
async function readCa(keyPath: string, certPath: string): Promise<LocalCa | undefined> {
  let text: string;
  try {
    text = await readFile(keyPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  // Another user must never read the key: tighten a file someone loosened.
  if (((await stat(keyPath)).mode & 0o077) !== 0) await chmod(keyPath, 0o600);
  try {
    const keyBlock = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\r?\n?/.exec(text);
    const certBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\r?\n?/.exec(text);
    if (!keyBlock || !certBlock) throw new Error("no private key and certificate in it");
    const cert = new x509.X509Certificate(certBlock[0]);
    const key = await crypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decodeFirst(keyBlock[0]),
      EC,
      false,
      ["sign"],
    );
    // The key must belong to the certificate.
    const spki = createPublicKey(createPrivateKey(keyBlock[0])).export({ type: "spki", format: "der" });
    if (!spki.equals(Buffer.from(cert.publicKey.rawData)))
      throw new Error("the key does not match the certificate");
    const certPem = cert.toString("pem").trim() + "\n";
    return { certPem, certPath, cert, key };
  } catch (err) {
    throw new Error(
      `The emulator's CA in ${keyPath} is damaged (${(err as Error).message}). ` +
        `Delete ${keyPath} and ${certPath} to create a new one; clients must then trust the new ${certPath}.`,
      { cause: err },
    );
  }
}

async function createCa(now: Date): Promise<{ keyPem: string; certPem: string }> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  // A random suffix in the name keeps CAs of different data folders apart in trust stores.
  const name = `CN=azkeep emulator local CA ${randomBytes(4).toString("hex")}, O=azkeep emulator`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 10 * 365 * DAY),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    ],
  });
  const keyDer = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    keyPem: x509.PemConverter.encode(keyDer, "PRIVATE KEY").trim() + "\n",
    certPem: cert.toString("pem").trim() + "\n",
  };
}

/**
 * Signs a leaf certificate for `hosts` (DNS names, wildcards and IP addresses) with the CA.
 * It carries what strict verifiers (OpenSSL with X509_STRICT, Go, rustls) require: SAN,
 * serverAuth, digitalSignature, and key identifiers linking it to the CA.
 */
export async function issueServerCertificate(
  ca: LocalCa,
  hosts: readonly string[],
  now: Date = new Date(),
): Promise<ServerCertificate> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const names: x509.JsonGeneralName[] = hosts.map((h) =>
    isIP(h) ? { type: "ip", value: h } : { type: "dns", value: h },
  );
  const notAfter = new Date(Math.min(now.getTime() + 365 * DAY, ca.cert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=azkeep emulator, O=azkeep emulator",
    issuer: ca.cert.subjectName,
    notBefore: new Date(now.getTime() - DAY),
    notAfter,
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false, crypto),
    ],
  });
  const keyDer = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    keyPem: x509.PemConverter.encode(keyDer, "PRIVATE KEY"),
    chainPem: cert.toString("pem").trim() + "\n" + ca.certPem,
    cert,
  };
}

/** A positive 128-bit serial number. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

/** Writes a new file with exactly `mode` (not subject to umask), flushed to disk. */
async function writeFileMode(path: string, data: string, mode: number): Promise<void> {
  const fh = await open(path, "wx", mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
