// Minimal JWT (JWS compact) signing for tests, on node:crypto only:
// HS256/384/512 (HMAC), RS256/384/512 (RSASSA-PKCS1-v1_5) and
// ES256/384/512 (ECDSA, signature in JOSE raw r||s form), plus unsigned
// `alg: none` tokens for negative tests.
import crypto from 'node:crypto';

export const b64url = (buf) => Buffer.from(buf).toString('base64url');

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

function hashOf(alg) {
  const h = HASH[alg.slice(2)];
  if (!h) throw new Error(`unsupported alg ${alg}`);
  return h;
}

// "<header>.<payload>" for the given header and claims.
export function signingInput(header, claims) {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
}

// Signs claims with alg; key is the HMAC secret (string/Buffer) for HS*,
// a private KeyObject or PEM for RS*/ES*. extraHeader is merged into the
// header ({ kid }, or { alg } to lie about the algorithm).
export function signJwt(claims, alg, key, extraHeader = {}) {
  const header = { alg, typ: 'JWT', ...extraHeader };
  const input = signingInput(header, claims);
  let sig;
  if (alg.startsWith('HS')) {
    sig = crypto.createHmac(hashOf(alg), key).update(input).digest();
  } else if (alg.startsWith('RS')) {
    sig = crypto.sign(hashOf(alg), Buffer.from(input), key);
  } else if (alg.startsWith('ES')) {
    sig = crypto.sign(hashOf(alg), Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  return `${input}.${b64url(sig)}`;
}

export const hs256 = (claims, secret) => signJwt(claims, 'HS256', secret);
export const hs384 = (claims, secret) => signJwt(claims, 'HS384', secret);
export const hs512 = (claims, secret) => signJwt(claims, 'HS512', secret);
export const rs256 = (claims, privateKey) => signJwt(claims, 'RS256', privateKey);
export const es256 = (claims, privateKey) => signJwt(claims, 'ES256', privateKey);

// An unsigned token, header {"alg":"none"}. The JWS form has an empty third
// segment ("h.p."); signature lets a test put something there instead.
export function noneToken(claims, signature = '') {
  return `${signingInput({ alg: 'none', typ: 'JWT' }, claims)}.${signature}`;
}

// Verifies an HS token (used to self-check the helper).
export function verifyHs(token, secret) {
  const [h, p, s] = token.split('.');
  const { alg } = JSON.parse(Buffer.from(h, 'base64url'));
  const want = crypto.createHmac(hashOf(alg), secret).update(`${h}.${p}`).digest();
  return crypto.timingSafeEqual(want, Buffer.from(s, 'base64url'));
}

// Seconds since the epoch, as JWT NumericDate.
export const nowS = () => Math.floor(Date.now() / 1000);
