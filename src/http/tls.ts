import { readFileSync } from 'node:fs';
import { watchFileChanges } from '../config';
import type { Logger } from '../observability';

export interface ListenerTls {
  certFile: string;
  keyFile: string;
  /** CA bundle client certificates must chain to (mTLS); empty: no client certificate asked. */
  clientCaFile: string;
}

function read(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(
      `${setting}: cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** The listeners' TLS options, as node:https and node:tls take them. */
export interface ListenerSecrets {
  cert: Buffer;
  key: Buffer;
  /** The client CA, with requestCert and rejectUnauthorized set, for mutual TLS. */
  ca?: Buffer;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}

/** The secure-context part of the listener's options, read from the files now. */
export function readListenerTls(tls: ListenerTls): ListenerSecrets {
  const options: ListenerSecrets = {
    cert: read(tls.certFile, 'TLS_CERT_FILE'),
    key: read(tls.keyFile, 'TLS_KEY_FILE'),
  };
  if (tls.clientCaFile !== '') {
    options.ca = read(tls.clientCaFile, 'TLS_CLIENT_CA_FILE');
    // Without a certificate signed by the CA the handshake fails: nothing reaches the app.
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  return options;
}

/**
 * Swaps the listeners' certificate, key and client CA (`apply` sets them on
 * the HTTP and gRPC servers) when one of the files changes (cert-manager or
 * a Secret update renews them in place), for new connections; open ones
 * keep theirs. A pair that does not load (a key
 * written before its certificate) keeps the previous context until the next
 * change. Returns the function that stops watching.
 */
export function reloadListenerTls(
  apply: (secure: ListenerSecrets) => void,
  tls: ListenerTls,
  intervalMs: number,
  logger: Logger,
): () => void {
  const reload = (): void => {
    try {
      apply(readListenerTls(tls));
      logger.info('TLS certificate reloaded', { certFile: tls.certFile });
    } catch (err) {
      logger.error('TLS certificate not reloaded; keeping the previous one', {
        error: (err as Error).message,
      });
    }
  };
  const files = [tls.certFile, tls.keyFile, tls.clientCaFile].filter((f) => f !== '');
  const stops = files.map((f) => watchFileChanges(f, intervalMs, reload));
  return () => {
    for (const stop of stops) stop();
  };
}
