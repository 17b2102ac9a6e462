// The user's identity provider for latchkeyd's upstream-federation tests ("Continue with SSO"):
// node-oidc-provider with one confidential web client, latchkeyd, and development sign-in pages
// where any login name and any password sign in. The login name decides the account:
//
//   alice                        sub alice, email alice@example.com (verified), name Alice
//   bob@corp.test                sub bob@corp.test, email bob@corp.test (verified), name Bob
//   unverified-carol[@corp.test] sub as typed, email carol@example.com / carol@corp.test with
//                                email_verified false, name Carol
//   noemail                      sub noemail, no email claim at all, name Noemail
//
// The email and profile claims are in the ID token too (conformIdTokenClaims: false), not only at
// userinfo. The sign-in page's "[ Cancel ]" link (/interaction/<uid>/abort) sends the browser
// back to the client with error=access_denied.
//
// Same start protocol as server.js: listens on 127.0.0.1 on a free port and prints
// `ISSUER <url>` once ready; exits on SIGTERM.
import http from 'node:http';
import Provider from 'oidc-provider';

const CLIENT_ID = 'latchkey';
const CLIENT_SECRET = 'upstream-test-secret';

// A test harness may stop reading stdout after the first line; never die of that.
process.stdout.on('error', () => {});

function capitalized(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// The claims of the account a login name stands for (see the table above).
function accountClaims(login) {
  const verified = !login.startsWith('unverified-');
  const bare = verified ? login : login.slice('unverified-'.length);
  const local = bare.split('@')[0];
  const claims = { sub: login, name: capitalized(local) };
  if (login !== 'noemail') {
    claims.email = bare.includes('@') ? bare : `${bare}@example.com`;
    claims.email_verified = verified;
  }
  return claims;
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        // A confidential web application (latchkeyd's server side).
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        // A placeholder: latchkeyd's port is only known at runtime, so any http://127.0.0.1:<port>
        // redirect is accepted (see redirectUriAllowed below).
        redirect_uris: ['http://127.0.0.1/sso/callback'],
      },
    ],
    // latchkeyd always sends S256; require it so a request without PKCE fails here.
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
    },
    scopes: ['openid', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Claims granted by scope go into the ID token as well as to userinfo.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return accountClaims(id);
        },
      };
    },
    ttl: { AccessToken: 3600, Grant: 86400, Session: 86400, Interaction: 600, IdToken: 3600, AuthorizationCode: 600 },
  });

  // Any redirect URI on http://127.0.0.1 (any port, any path, no fragment) is allowed. The
  // authorization endpoint checks it with this method; the token endpoint only compares the
  // redirect_uri with the one the code was issued for.
  provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    let url;
    try {
      url = new URL(value);
    } catch {
      return false;
    }
    return url.protocol === 'http:' && url.hostname === '127.0.0.1'
      && url.username === '' && url.password === '' && url.hash === '';
  };

  server.on('request', provider.callback());
  console.log(`ISSUER ${issuer}`);
});
process.on('SIGTERM', () => process.exit(0));
