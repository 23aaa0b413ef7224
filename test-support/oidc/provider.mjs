// A real OpenID provider for the control plane's single sign-on tests:
// panva/oidc-provider with its development login pages (any login, any
// password; the login is the subject), the device flow, PKCE required and a
// `groups` claim in the ID token. Started by olin-test-support (oidc.rs).
//
// Settings come as one JSON document in OIDC_TEST_CONFIG:
//   { "port": 0, "clients": [{ "client_id", "client_secret", "redirect_uris" }] }
// When listening it prints one line to stdout: {"issuer": "http://127.0.0.1:PORT"}.
//
// Test hooks (a test fixture only; never part of the product):
//   POST /__test/tamper {"mode": M}: the next token response's ID token is
//     altered: "signature" (a byte of the signature flipped), "audience",
//     "expired", "nonce" or "issuer" (re-signed with the provider's own key,
//     so only that claim is wrong).
//   POST /__test/rotate: new signing keys (the old ones are gone from the JWKS).
//   POST /__test/clients [clients]: the registered clients replaced (a test
//     learns its control plane's redirect URI after starting this).
//
// A user whose login starts with "admin" is in the group "olincloud-admins".

import http from "node:http";
import crypto from "node:crypto";
import Provider from "oidc-provider";
import * as jose from "jose";

const settings = JSON.parse(process.env.OIDC_TEST_CONFIG ?? "{}");

async function signingKey() {
  const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: crypto.randomUUID(), alg: "RS256", use: "sig" };
}

function claimsOf(login) {
  return {
    sub: login,
    preferred_username: login,
    name: `Test user ${login}`,
    email: `${login}@example.test`,
    email_verified: true,
    groups: login.startsWith("admin") ? ["olincloud-admins", "staff"] : ["staff"],
  };
}

function provider(issuer, key) {
  const p = new Provider(issuer, {
    clients: settings.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    })),
    jwks: { keys: [key] },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
    },
    pkce: { required: () => true },
    scopes: ["openid", "profile", "email", "groups"],
    claims: {
      openid: ["sub"],
      profile: ["preferred_username", "name"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    // The claims asked for by scope go into the ID token itself, as
    // Keycloak and Dex do.
    conformIdTokenClaims: false,
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => claimsOf(id) }),
    // Every grant is given at once: consent is not what these tests test.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope("openid profile email groups");
      await grant.save();
      return grant;
    },
    ttl: { IdToken: 300, AccessToken: 300, DeviceCode: 300, Session: 3600, Interaction: 600, Grant: 3600 },
  });
  p.on("server_error", (_ctx, err) => console.error("provider error:", err));
  return p;
}

async function tampered(idToken, mode, key) {
  if (mode === "signature") {
    const [h, p, s] = idToken.split(".");
    const sig = Buffer.from(s, "base64url");
    sig[0] ^= 0xff;
    return `${h}.${p}.${sig.toString("base64url")}`;
  }
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case "audience":
      claims.aud = "another-client";
      break;
    case "expired":
      claims.iat = now - 7200;
      claims.exp = now - 3600;
      break;
    case "nonce":
      claims.nonce = "not-the-nonce-that-was-sent";
      break;
    case "issuer":
      claims.iss = "https://issuer.invalid";
      break;
    default:
      throw new Error(`unknown tamper mode ${mode}`);
  }
  const privateKey = await jose.importJWK(key, "RS256");
  return new jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(privateKey);
}

async function readJson(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : {};
}

let key = await signingKey();
let tamper = null;
let handler = null;
let issuer = null;

function install() {
  const p = provider(issuer, key);
  p.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/token" && ctx.status === 200 && tamper && ctx.body?.id_token) {
      const mode = tamper;
      tamper = null;
      ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, mode, key) };
    }
  });
  handler = p.callback();
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "POST" && req.url === "/__test/tamper") {
      tamper = (await readJson(req)).mode;
      res.writeHead(204).end();
    } else if (req.method === "POST" && req.url === "/__test/clients") {
      settings.clients = await readJson(req);
      install();
      res.writeHead(204).end();
    } else if (req.method === "POST" && req.url === "/__test/rotate") {
      key = await signingKey();
      install();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ kid: key.kid }));
    } else {
      handler(req, res);
    }
  } catch (err) {
    console.error(err);
    res.writeHead(500).end(String(err));
  }
});

server.listen(settings.port ?? 0, "127.0.0.1", () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  install();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// The test harness kills the process; a closed stdin (the harness gone) ends it too.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
