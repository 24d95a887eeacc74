// Generates the unrolled ref10-style feMul/feSq/feSq2/feCarry at the end of
// enclave-modules/sdk/crypto/_field25519.ts (node test/crypto/gen-field.mjs); crypto.test.ts checks they match.
// Generates ref10-style radix-2^25.5 multiplication and squaring for AssemblyScript.
const L = [];
const odd = i => i % 2 === 1;
function mulBody(sq, dbl) {
  const out = [];
  for (let i = 0; i < 10; i++) out.push(`  const f${i} = load<i64>(f, ${8 * i});`);
  if (!sq) for (let i = 0; i < 10; i++) out.push(`  const g${i} = load<i64>(g, ${8 * i});`);
  const need = new Set();
  const hs = [];
  for (let k = 0; k < 10; k++) {
    const terms = [];
    for (let i = 0; i < 10; i++) for (let j = 0; j < 10; j++) {
      if ((i + j) % 10 !== k) continue;
      if (sq && j < i) continue;
      let fc = (odd(i) && odd(j)) ? 2 : 1;
      if (sq && i !== j) fc *= 2;
      const gc = (i + j >= 10) ? 19 : 1;
      const fa = fc === 1 ? `f${i}` : `f${i}_${fc}`;
      const src = sq ? 'f' : 'g';
      const ga = gc === 1 ? `${src}${j}` : `${src}${j}_19`;
      if (fc !== 1) need.add(`f${i}_${fc}:f${i}:${fc}`);
      if (gc !== 1) need.add(`${src}${j}_19:${src}${j}:19`);
      terms.push(`${fa} * ${ga}`);
    }
    hs.push(`  let h${k} = ${terms.join(' + ')};`);
  }
  for (const n of [...need].sort()) { const [name, base, c] = n.split(':'); out.push(`  const ${name} = ${base} * ${c};`); }
  out.push(...hs);
  if (dbl) out.push('  h0 += h0; h1 += h1; h2 += h2; h3 += h3; h4 += h4; h5 += h5; h6 += h6; h7 += h7; h8 += h8; h9 += h9;');
  out.push(carry());
  return out.join('\n');
}
function carry() {
  return `  let c: i64;
  c = (h0 + (1 << 25)) >> 26; h1 += c; h0 -= c << 26;
  c = (h4 + (1 << 25)) >> 26; h5 += c; h4 -= c << 26;
  c = (h1 + (1 << 24)) >> 25; h2 += c; h1 -= c << 25;
  c = (h5 + (1 << 24)) >> 25; h6 += c; h5 -= c << 25;
  c = (h2 + (1 << 25)) >> 26; h3 += c; h2 -= c << 26;
  c = (h6 + (1 << 25)) >> 26; h7 += c; h6 -= c << 26;
  c = (h3 + (1 << 24)) >> 25; h4 += c; h3 -= c << 25;
  c = (h7 + (1 << 24)) >> 25; h8 += c; h7 -= c << 25;
  c = (h4 + (1 << 25)) >> 26; h5 += c; h4 -= c << 26;
  c = (h8 + (1 << 25)) >> 26; h9 += c; h8 -= c << 26;
  c = (h9 + (1 << 24)) >> 25; h0 += c * 19; h9 -= c << 25;
  c = (h0 + (1 << 25)) >> 26; h1 += c; h0 -= c << 26;
` + [0,1,2,3,4,5,6,7,8,9].map(i => `  store<i64>(h, h${i}, ${8 * i});`).join('\n');
}
console.log(`/** h = f * g (mod p). Inputs: limbs below ~2^27 in magnitude; output carried. @internal */
export function feMul(h: usize, f: usize, g: usize): void {
${mulBody(false)}
}

/** h = f^2 (mod p). @internal */
export function feSq(h: usize, f: usize): void {
${mulBody(true)}
}

/** h = 2 * f^2 (mod p) (ref10 fe_sq2, used by point doubling). @internal */
export function feSq2(h: usize, f: usize): void {
${mulBody(true, true)}
}

/** Carries a field element to the bounds of a product output (|limb| <= ~2^25). @internal */
export function feCarry(h: usize): void {
  let h0 = load<i64>(h, 0);
  let h1 = load<i64>(h, 8);
  let h2 = load<i64>(h, 16);
  let h3 = load<i64>(h, 24);
  let h4 = load<i64>(h, 32);
  let h5 = load<i64>(h, 40);
  let h6 = load<i64>(h, 48);
  let h7 = load<i64>(h, 56);
  let h8 = load<i64>(h, 64);
  let h9 = load<i64>(h, 72);
${carry()}
}
`);
