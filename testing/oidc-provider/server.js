// A standard OpenID provider (node-oidc-provider) for latchkey-client's interop test: device
// flow, authorization code + PKCE with loopback redirects (a native client), refresh-token
// rotation and revocation enabled, development sign-in pages (any login name, any password).
// Listens on 127.0.0.1 on a free port and prints `ISSUER <url>` once ready.
import http from 'node:http';
import Provider from 'oidc-provider';

// A test harness may stop reading stdout after the first line; never die of that.
process.stdout.on('error', () => {});

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'latchkey-cli',
        // A native app (RFC 8252): loopback redirects on any port, PKCE required.
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: [
          'urn:ietf:params:oauth:grant-type:device_code',
          'authorization_code',
          'refresh_token',
        ],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
    ],
    features: {
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: true },
    },
    scopes: ['openid', 'offline_access', 'email'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.com`, email_verified: true };
        },
      };
    },
    ttl: { AccessToken: 3600, DeviceCode: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  });
  server.on('request', provider.callback());
  console.log(`ISSUER ${issuer}`);
});
process.on('SIGTERM', () => process.exit(0));
