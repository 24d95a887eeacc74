/**
 * The identity of a module: its measurement, its signers and its security version (svn).
 * Imports the signature format (./module-signature.ts), never the reverse; the trust decision built
 * on identities is ./trust.ts.
 *
 * measurement = SHA-256(module bytes without the leading `signature` section). Signing only
 * prepends that section, so the measurement of a signed module equals `sha256sum` of the unsigned
 * file, and adding signers never changes it. The `enclave.contract` section is inside the measured
 * bytes, so a contract cannot be swapped without changing the identity (docs/ABI.md §6).
 */
import { bytesToHex } from './_bytes.js';
import { measureLayout, parseLayout } from './_layout.js';
import { readContract } from './contract.js';
import type { PublicKeyInput } from './keys.js';
import { verifyModule } from './module-signature.js';

/** Who a module is, as attestation reports it. All digests are lowercase hex. */
export interface ModuleIdentity {
  /** SHA-256 of the module without its signature section, 64 hex digits. */
  readonly measurement: string;
  /** Signer ids (SHA-256 of the raw 32-byte Ed25519 public key) of the valid signatures among the keys given. */
  readonly signers: readonly string[];
  /**
   * The signer whose trust entry admitted the module ({@link checkTrust}); sealing with the
   * `signer` policy binds to it. Absent when no trust check was made.
   */
  readonly signer?: string;
  /** The contract's security version number. */
  readonly svn: number;
  /** The contract's `name`. */
  readonly name: string;
  /** The contract's `version`. */
  readonly version: string;
}

/**
 * Computes the measurement of a module: SHA-256 over its bytes with the signature section left out.
 * @param bytes - a WebAssembly module, signed or not.
 * @returns the 32-byte digest.
 * @throws {AttestationError} `invalid_module` if the bytes are not a well-framed module;
 *   `malformed_signature` if a `signature` section is misplaced or duplicated.
 * @example
 * const digest = measure(await readFile('echo.wasm'));
 * console.log(Buffer.from(digest).toString('hex'));
 */
export function measure(bytes: Uint8Array): Uint8Array {
  return measureLayout(parseLayout(bytes));
}

/**
 * Computes a module's identity: measurement, contract name/version/svn, and which of the given
 * public keys validly signed it. Without keys, `signers` is empty: a signature can only be checked
 * against a key you already hold (use {@link readSignatures} to list the key ids it claims).
 *
 * The one place an identity is built: {@link checkTrust} (./trust.ts) only adds the admitting
 * `signer` to what this returns, and the runtime calls one or the other, so every layer agrees on
 * what an identity holds.
 * @param bytes - a WebAssembly module.
 * @param publicKeys - candidate signer keys (raw 32 bytes, hex, base64url, JWK or JWK JSON).
 * @throws {AttestationError} `invalid_module`, `invalid_contract`, `malformed_signature`, `invalid_key`.
 * @example
 * const id = moduleIdentity(bytes, [await readPublicKeyFile('release.pub.json')]);
 * console.log(id.measurement, id.signers, id.svn);
 */
export function moduleIdentity(bytes: Uint8Array, publicKeys: readonly PublicKeyInput[] = []): ModuleIdentity {
  const contract = readContract(bytes);
  const measurement = bytesToHex(measure(bytes));
  const signers = publicKeys.length > 0 ? verifyModule(bytes, publicKeys).map((s) => s.signer) : [];
  return Object.freeze({ measurement, signers: Object.freeze(signers), svn: contract.svn, name: contract.name, version: contract.version });
}
