// A demo OpenID Provider standing for a bank's own (stetgate.demo.openid_provider: the tests, the
// delegated-login benchmark, `stetgate sandbox --delegated-login`): panva/oidc-provider with one
// confidential client (client_secret_basic, PKCE S256 required), one signing key generated at
// start (a restart is a key rotation), and a plain-HTML login form standing for the bank's own
// strong authentication: the test chooses the `acr`/`amr` the OP asserts, or aborts
// (error=access_denied). Configuration comes from the environment:
//   OP_PORT, OP_ISSUER, OP_REDIRECT_URI, OP_CLIENT_ID, OP_CLIENT_SECRET or OP_CLIENT_JWK,
//   OP_ID_TOKEN_TTL.
import crypto from 'node:crypto';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OP_PORT || 4000);
const issuer = env.OP_ISSUER || `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });
jwk.kid = crypto.randomBytes(8).toString('hex');
jwk.use = 'sig';
jwk.alg = 'RS256';

// OP_CLIENT_JWK (a public JWK, JSON): the client authenticates with private_key_jwt.
const clientAuth = env.OP_CLIENT_JWK
  ? {
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: { keys: [JSON.parse(env.OP_CLIENT_JWK)] },
  }
  : {
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret: env.OP_CLIENT_SECRET || 'stetgate-secret',
  };

const configuration = {
  clients: [
    {
      client_id: env.OP_CLIENT_ID || 'stetgate',
      redirect_uris: [env.OP_REDIRECT_URI || 'https://127.0.0.1/psu/oidc/callback'],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      ...clientAuth,
    },
  ],
  jwks: { keys: [jwk] },
  acrValues: ['urn:bank:sca', 'urn:bank:password'],
  claims: { openid: ['sub', 'amr'] },
  pkce: { required: () => true },
  ttl: { IdToken: Number(env.OP_ID_TOKEN_TTL || 600), AuthorizationCode: 60 },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['stetgate-test-op-cookie-key'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

const escape = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
}

// The interaction pages: plain forms a test posts with httpx.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/(login|abort))?$/);
  if (!match) return next();
  const { req, res } = ctx;
  const details = await provider.interactionDetails(req, res);
  if (ctx.method === 'GET' && !match[2]) {
    const params = details.params;
    ctx.type = 'html';
    ctx.body = `<!doctype html><html lang="${escape(params.ui_locales || 'en')}"><body>
<h1>Bank login</h1>
<p id="requested-acr">${escape(params.acr_values)}</p>
<form method="post" action="/interaction/${details.uid}/login">
<input name="login" value="${escape(params.login_hint)}">
<input name="acr" value="urn:bank:sca">
<input name="amr" value="pwd otp">
<button>Sign in</button></form>
<form method="post" action="/interaction/${details.uid}/abort"><button>Cancel</button></form>
</body></html>`;
    return undefined;
  }
  if (ctx.method !== 'POST') return next();
  ctx.respond = false;
  if (match[3] === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  const form = await readForm(req);
  const grant = new provider.Grant({ accountId: form.login, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId: form.login, acr: form.acr, amr: form.amr.split(' ').filter(Boolean) },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer} kid=${jwk.kid}`);
});
