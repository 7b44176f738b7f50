/**
 * Client certificates for service principals: a PEM holding the private key and the
 * certificate (az's `--certificate` format). The key signs a JWT client assertion (RFC 7523)
 * whose header names the certificate by thumbprint, as Entra requires.
 */
import { X509Certificate, createHash, createPrivateKey, sign, type KeyObject } from "node:crypto";
import { AzkeepError } from "../errors.js";

export interface LoadedCertificate {
  key: KeyObject;
  alg: "RS256" | "ES256" | "ES384" | "ES512";
  /** base64url SHA-1 of the DER certificate (`x5t`). */
  x5t: string;
  /** base64url SHA-256 of the DER certificate (`x5t#S256`). */
  x5tS256: string;
  /** base64 DER of the certificate chain, leaf first (`x5c`, for subject-name/issuer auth). */
  x5c: string[];
  /** SHA-1 thumbprint in upper-case hex, as the Azure portal shows it. */
  thumbprint: string;
  notAfter: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

function badCert(message: string, hint?: string): AzkeepError {
  return new AzkeepError("bad_input", message, {
    hint:
      hint ??
      "Give a PEM file that contains both the private key and the certificate (cat key.pem cert.pem > both.pem).",
  });
}

/** Parses a PEM with a private key and at least one certificate; throws `bad_input` otherwise. */
export function loadCertificate(pem: string, label = "The certificate file"): LoadedCertificate {
  let keyBlock: string | undefined;
  const certs: Buffer[] = [];
  for (const m of pem.matchAll(BLOCK)) {
    const [whole, kind = "", body = ""] = m;
    if (kind.endsWith("PRIVATE KEY")) keyBlock ??= whole;
    else if (kind === "CERTIFICATE") certs.push(Buffer.from(body.replace(/\s+/g, ""), "base64"));
  }
  if (!keyBlock && certs.length === 0) throw badCert(`${label} is not a PEM file.`);
  if (!keyBlock) throw badCert(`${label} has no private key.`);
  if (certs.length === 0) throw badCert(`${label} has no certificate.`);
  if (keyBlock.includes("ENCRYPTED")) {
    throw badCert(
      `${label} holds an encrypted private key.`,
      "Decrypt it first: openssl pkey -in key.pem -out plain.pem",
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyBlock);
  } catch (e) {
    throw new AzkeepError("bad_input", `${label} has a private key that cannot be read.`, {
      cause: e,
      hint: "Give an unencrypted RSA or EC private key in PEM form.",
    });
  }
  const der = certs[0] as Buffer;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (e) {
    throw new AzkeepError("bad_input", `${label} has a certificate that cannot be read.`, { cause: e });
  }
  if (!x509.checkPrivateKey(key)) {
    throw badCert(`${label}: the private key does not belong to the certificate.`);
  }
  let alg: LoadedCertificate["alg"];
  if (key.asymmetricKeyType === "rsa") alg = "RS256";
  else if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    alg = curve === "secp384r1" ? "ES384" : curve === "secp521r1" ? "ES512" : "ES256";
  } else throw badCert(`${label} has a ${key.asymmetricKeyType ?? "unknown"} key; RSA or EC is needed.`);
  const sha1 = createHash("sha1").update(der).digest();
  return {
    key,
    alg,
    x5t: sha1.toString("base64url"),
    x5tS256: createHash("sha256").update(der).digest("base64url"),
    x5c: certs.map((c) => c.toString("base64")),
    thumbprint: sha1.toString("hex").toUpperCase(),
    notAfter: x509.validTo,
  };
}

/** A signed client assertion for `audience` (the token endpoint), valid 10 minutes. */
export function signClientAssertion(
  cert: LoadedCertificate,
  opts: { clientId: string; audience: string; nowSec: number; jti: string; sendX5c?: boolean },
): string {
  const header: Record<string, unknown> = {
    alg: cert.alg,
    typ: "JWT",
    x5t: cert.x5t,
    "x5t#S256": cert.x5tS256,
  };
  if (opts.sendX5c) header.x5c = cert.x5c;
  const payload = {
    aud: opts.audience,
    iss: opts.clientId,
    sub: opts.clientId,
    jti: opts.jti,
    iat: opts.nowSec,
    nbf: opts.nowSec,
    exp: opts.nowSec + 600,
  };
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc(header)}.${enc(payload)}`;
  const hash = cert.alg === "RS256" ? "sha256" : `sha${cert.alg.slice(2)}`;
  const sig = sign(hash, Buffer.from(input), { key: cert.key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}
