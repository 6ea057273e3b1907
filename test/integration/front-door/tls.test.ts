import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { credentials as grpcCredentials, status as grpcStatus } from '@grpc/grpc-js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../../src/config';
import type { FakeTriton } from '../../../src/fake-triton';
import {
  serversEnv,
  simpleRequest,
  startFakes,
  startTestProxy,
  waitFor,
  type TestProxy,
} from '../../helpers/proxy-harness';
import {
  GrpcTestClient,
  expectGrpcStatus,
  int32sOf,
  simpleInferRequest,
  startGrpcTestProxy,
  type GrpcTestProxy,
} from '../../helpers/grpc-client';

const A = Array.from({ length: 16 }, (_, i) => i);
const INFER_BODY = JSON.stringify(simpleRequest(A, A));

/** A CA and certificates it signs, made with the openssl CLI in a temporary directory. */
class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'triton-proxy-tls-'));

  constructor() {
    this.openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2'],
      ['-keyout', this.file('ca.key'), '-out', this.file('ca.crt'), '-subj', '/CN=test-ca'],
    );
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  /** Issues `<name>.crt`/`<name>.key` for CN, valid for 127.0.0.1 (server) or client auth. */
  issue(name: string, cn: string, usage: 'server' | 'client'): void {
    const ext = this.file(`${name}.ext`);
    writeFileSync(
      ext,
      usage === 'server'
        ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
        : 'extendedKeyUsage=clientAuth\n',
    );
    this.openssl(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`],
      ['-keyout', this.file(`${name}.key`), '-out', this.file(`${name}.csr`)],
    );
    this.openssl(
      ['x509', '-req', '-days', '2', '-in', this.file(`${name}.csr`)],
      ['-CA', this.file('ca.crt'), '-CAkey', this.file('ca.key'), '-CAcreateserial'],
      ['-extfile', ext, '-out', this.file(`${name}.crt`)],
    );
  }

  private openssl(...args: string[][]): void {
    execFileSync('openssl', args.flat(), { stdio: 'ignore' });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface TlsAnswer {
  status: number;
  peerCn: string;
}

/** One HTTPS inference; resolves with the status and the CN of the certificate the server showed. */
function inferOverTls(
  port: number,
  ca: Buffer,
  client?: { cert: Buffer; key: Buffer },
): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v2/models/simple/infer',
        headers: { 'content-type': 'application/json' },
        ca,
        ...client,
        agent: false,
      },
      (res) => {
        const peer = res.socket && 'getPeerCertificate' in res.socket;
        const cn = peer
          ? String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN)
          : '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, peerCn: cn }));
      },
    );
    req.on('error', reject);
    req.end(INFER_BODY);
  });
}

/** The CN of the certificate a TLS server on `port` shows to an HTTP/2 client. */
function peerCnOf(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      const cn = String(socket.getPeerCertificate().subject.CN);
      socket.destroy();
      resolve(cn);
    });
    socket.on('error', reject);
  });
}

describe('front door: TLS on the HTTP listener and the gRPC front end', function () {
  // openssl key generation takes a moment on a loaded machine.
  this.timeout(60000);
  let fakes: FakeTriton[];
  let pki: Pki;

  before(async () => {
    fakes = await startFakes(1);
    pki = new Pki();
    pki.issue('server-a', 'proxy-a', 'server');
    pki.issue('server-b', 'proxy-b', 'server');
    pki.issue('client', 'client-1', 'client');
  });
  after(async () => {
    await Promise.all(fakes.map((f) => f.stop({ graceMs: 100 })));
    pki.remove();
  });

  describe('with a certificate and key', () => {
    let proxy: TestProxy;
    let dir: string;
    const install = (name: string): void => {
      // Written the way a Secret update lands: new files renamed into place.
      for (const ext of ['crt', 'key']) {
        writeFileSync(join(dir, `.next.${ext}`), readFileSync(pki.file(`${name}.${ext}`)));
        renameSync(join(dir, `.next.${ext}`), join(dir, `tls.${ext}`));
      }
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'triton-proxy-tls-mount-'));
      install('server-a');
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TLS_CERT_FILE: join(dir, 'tls.crt'),
        TLS_KEY_FILE: join(dir, 'tls.key'),
        AUTH_KEYS_RELOAD_INTERVAL_MS: '50',
      });
    });
    after(async () => {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves inference over HTTPS with a certificate the client verifies', async () => {
      const answer = await inferOverTls(proxy.proxy.port(), readFileSync(pki.file('ca.crt')));
      assert.deepEqual(answer, { status: 200, peerCn: 'proxy-a' });
    });

    it('gives plain HTTP no answer', async () => {
      const outcome = await new Promise<string>((resolve) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: proxy.proxy.port(), path: '/health/live', agent: false },
          (res) => resolve(`answered ${res.statusCode}`),
        );
        req.on('error', (err) => resolve(`refused: ${err.message}`));
        req.end();
      });
      assert.match(outcome, /^refused/);
    });

    it('serves the rewritten certificate to new connections without restart', async () => {
      install('server-b');
      const ca = readFileSync(pki.file('ca.crt'));
      await waitFor(
        async () => (await inferOverTls(proxy.proxy.port(), ca)).peerCn === 'proxy-b',
        10000,
        'the new certificate to be served',
      );
      assert.equal((await inferOverTls(proxy.proxy.port(), ca)).status, 200);
    });
  });

  describe('with a client CA (mutual TLS)', () => {
    let proxy: TestProxy;
    before(async () => {
      proxy = await startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TLS_CERT_FILE: pki.file('server-a.crt'),
        TLS_KEY_FILE: pki.file('server-a.key'),
        TLS_CLIENT_CA_FILE: pki.file('ca.crt'),
      });
    });
    after(async () => {
      await proxy.close();
    });

    it('refuses a client without a certificate in the handshake', async () => {
      await assert.rejects(inferOverTls(proxy.proxy.port(), readFileSync(pki.file('ca.crt'))));
    });

    it('serves a client whose certificate the CA signed', async () => {
      const answer = await inferOverTls(proxy.proxy.port(), readFileSync(pki.file('ca.crt')), {
        cert: readFileSync(pki.file('client.crt')),
        key: readFileSync(pki.file('client.key')),
      });
      assert.equal(answer.status, 200);
    });
  });

  it('refuses to start with a certificate but no key, naming the missing setting', async () => {
    await assert.rejects(
      startTestProxy({ TRITON_SERVERS: serversEnv(fakes), TLS_CERT_FILE: pki.file('ca.crt') }),
      (err: Error) => err instanceof ConfigError && /TLS_KEY_FILE/.test(err.message),
    );
  });

  it('refuses to start with a certificate file it cannot read, naming the setting', async () => {
    await assert.rejects(
      startTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TLS_CERT_FILE: '/nonexistent/tls.crt',
        TLS_KEY_FILE: pki.file('server-a.key'),
      }),
      (err: Error) => err instanceof ConfigError && /TLS_CERT_FILE/.test(err.message),
    );
  });
  describe('on the gRPC front end', () => {
    let proxy: GrpcTestProxy;
    let dir: string;
    const clients: GrpcTestClient[] = [];
    const client = (
      creds = grpcCredentials.createSsl(readFileSync(pki.file('ca.crt'))),
    ): GrpcTestClient => {
      const c = new GrpcTestClient(proxy.grpcAddress, creds);
      clients.push(c);
      return c;
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'triton-proxy-grpc-tls-'));
      for (const ext of ['crt', 'key']) {
        writeFileSync(join(dir, `tls.${ext}`), readFileSync(pki.file(`server-a.${ext}`)));
      }
      proxy = await startGrpcTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TLS_CERT_FILE: join(dir, 'tls.crt'),
        TLS_KEY_FILE: join(dir, 'tls.key'),
        AUTH_KEYS_RELOAD_INTERVAL_MS: '50',
      });
    });
    after(async () => {
      for (const c of clients) c.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves control RPCs and ModelInfer to a client that verifies the certificate', async () => {
      const c = client();
      assert.deepEqual(await c.call('ServerLive', {}), { live: true });
      const answer = await c.inferBytes(c.encode('ModelInfer', simpleInferRequest(A, A)));
      const decoded = c.decodeResponse<{ raw_output_contents: Buffer[] }>(
        'ModelInfer',
        answer.value,
      );
      assert.deepEqual(
        int32sOf(decoded.raw_output_contents[0]!),
        A.map((x) => 2 * x),
      );
    });

    it('gives a plaintext client no service', async () => {
      const c = client(grpcCredentials.createInsecure());
      await expectGrpcStatus(
        c.call('ServerLive', {}, { deadlineMs: 5000 }),
        grpcStatus.UNAVAILABLE,
      );
    });

    it('serves the rewritten certificate to new connections without restart', async () => {
      const ca = readFileSync(pki.file('ca.crt'));
      assert.equal(await peerCnOf(proxy.proxy.grpcPort(), ca), 'proxy-a');
      for (const ext of ['crt', 'key']) {
        writeFileSync(join(dir, `.next.${ext}`), readFileSync(pki.file(`server-b.${ext}`)));
        renameSync(join(dir, `.next.${ext}`), join(dir, `tls.${ext}`));
      }
      await waitFor(
        async () => (await peerCnOf(proxy.proxy.grpcPort(), ca)) === 'proxy-b',
        10000,
        'the new certificate on the gRPC port',
      );
      assert.deepEqual(await client().call('ServerLive', {}), { live: true });
    });
  });

  describe('on the gRPC front end with a client CA (mutual TLS)', () => {
    let proxy: GrpcTestProxy;
    const clients: GrpcTestClient[] = [];
    before(async () => {
      proxy = await startGrpcTestProxy({
        TRITON_SERVERS: serversEnv(fakes),
        TLS_CERT_FILE: pki.file('server-a.crt'),
        TLS_KEY_FILE: pki.file('server-a.key'),
        TLS_CLIENT_CA_FILE: pki.file('ca.crt'),
      });
    });
    after(async () => {
      for (const c of clients) c.close();
      await proxy.close();
    });
    const client = (withCertificate: boolean): GrpcTestClient => {
      const ca = readFileSync(pki.file('ca.crt'));
      const creds = withCertificate
        ? grpcCredentials.createSsl(
            ca,
            readFileSync(pki.file('client.key')),
            readFileSync(pki.file('client.crt')),
          )
        : grpcCredentials.createSsl(ca);
      const c = new GrpcTestClient(proxy.grpcAddress, creds);
      clients.push(c);
      return c;
    };

    it('refuses a client without a certificate in the handshake', async () => {
      await expectGrpcStatus(
        client(false).call('ServerLive', {}, { deadlineMs: 5000 }),
        grpcStatus.UNAVAILABLE,
      );
    });

    it('serves a client whose certificate the CA signed', async () => {
      assert.deepEqual(await client(true).call('ServerLive', {}), { live: true });
    });
  });
});
