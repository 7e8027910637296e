/**
 * Reads and checks the PEM files of TransportOptions.tls for both transports, before either library
 * sees them: uWS reports every problem with them as a bare 'App construction failed', and Node's TLS
 * errors name neither file. Every error here names the file at fault.
 */
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { ErrorCode, PromstreamError } from '../errors.js';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsMaterial {
  /** PEM text as read, possibly a chain (leaf first). */
  readonly cert: Buffer;
  readonly key: Buffer;
}

export async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const cert = await readPem(files.certFile, 'certificate');
  const key = await readPem(files.keyFile, 'private key');
  let certificate: X509Certificate;
  try {
    // Parses the first certificate of the file: the leaf, which must match the key.
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new PromstreamError(ErrorCode.TLS_FILE, `TLS certificate file ${files.certFile} holds no PEM certificate (${messageOf(err)})`, { cause: err });
  }
  let privateKey: KeyObject;
  try {
    // An encrypted key fails here too: neither transport is given a passphrase.
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new PromstreamError(ErrorCode.TLS_FILE, `TLS key file ${files.keyFile} holds no unencrypted PEM private key (${messageOf(err)})`, { cause: err });
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new PromstreamError(ErrorCode.TLS_FILE, `TLS key file ${files.keyFile} does not belong to the certificate in ${files.certFile}`);
  }
  return { cert, key };
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    // ENOENT, EACCES, EISDIR: Node's message carries the code and the path.
    throw new PromstreamError(ErrorCode.TLS_FILE, `cannot read the TLS ${what} file ${file}: ${messageOf(err)}`, { cause: err });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
