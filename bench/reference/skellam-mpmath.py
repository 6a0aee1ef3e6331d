# Reference for packages/dp/test/skellam.test.ts: the distributed Skellam mechanism's accounting, written
# independently of fedtwin's TypeScript with mpmath (50 digits). Run: python3 bench/reference/skellam-mpmath.py
# 1. ε of T rounds of the Skellam RDP bound (Agarwal, Kairouz & Liu 2021, Cor. 4.1) at integer orders 2..63,
#    128, 256, 512, 1024, improved conversion (Balle et al. 2020), for a few (Δ₂, Δ₁, V, T, δ).
# 2. The exact Rényi divergence D_α(Sk(V) + Δ ‖ Sk(V)) in one dimension (pmf via Bessel I), which the bound
#    must not be below (Δ₁ = Δ₂ = Δ in one dimension).
import mpmath as mp, json
mp.mp.dps = 50
ORDERS = list(range(2, 64)) + [128, 256, 512, 1024]
def rdp_bound(a, l2, l1, v):
    a, l2, l1, v = map(mp.mpf, (a, l2, l1, v))
    return a*l2**2/(2*v) + min(((2*a-1)*l2**2 + 6*l1)/(4*v**2), 3*l1/(2*v))
def eps_improved(rdps, delta):
    best = None
    d = mp.mpf(delta)
    for a, r in zip(ORDERS, rdps):
        a_ = mp.mpf(a)
        if d**2 > -mp.expm1(-r): e = mp.mpf(0)
        else: e = r + mp.log1p(-1/a_) - mp.log(d*a_)/(a_-1)
        e = max(e, mp.mpf(0))
        if best is None or e < best[0]: best = (e, a)
    return best
cases = [
    dict(l2=1128.3495431159438, l1=356815.4553056747, v=1833368.677734375, T=55, delta=1e-5),
    dict(l2=100.0, l1=1000.0, v=40000.0, T=10, delta=1e-5),
    dict(l2=10.0, l1=100.0, v=100.0, T=1, delta=1e-6),
    dict(l2=5000.0, l1=5000.0*300, v=(3*5000.0)**2, T=200, delta=1e-5),
    # the VAE's site-level Skellam step of `fedtwin sim --generator vae --dp site --nodes 2 --rounds 2` (ε = 8 over
    # calibrationRounds(2) = 3 rounds; 2 rounds spent, and the 3 planned)
    dict(l2=724.8543925744929, l1=29479.39237465257, v=2*320887.525390625, T=2, delta=1e-5),
    dict(l2=724.8543925744929, l1=29479.39237465257, v=2*320887.525390625, T=3, delta=1e-5),
]
for c in cases:
    r = [rdp_bound(a, c['l2'], c['l1'], c['v'])*c['T'] for a in ORDERS]
    e, a = eps_improved(r, c['delta'])
    print(json.dumps(dict(kind='epsilon', **c, epsilon=float(e), order=a)))
# 3. Composition with Gaussian steps at q = 1 (RDP α/(2z²), exact) at the same orders: marginals-like rounds
#    (count vectors of sensitivity 1, Sk(μ) with μ in the convention Poisson(μ) − Poisson(μ), variance 2μ), mixed
#    with a Gaussian round. Fractional orders are +∞ for Skellam, so only the integer orders above take part.
def sk_rdp_mu(a, l2, l1, mu):
    return rdp_bound(a, l2, l1, 2*mp.mpf(mu))
mixed = [
    dict(skellam=[dict(mu=73.8125, l1=1, l2=1, steps=121), dict(mu=283.625, l1=1, l2=1, steps=465), dict(mu=18.3125, l1=1, l2=1, steps=30)], gaussian=[], delta=1e-5),
    dict(skellam=[dict(mu=18.3125, l1=1, l2=1, steps=30)], gaussian=[dict(z=6.05, steps=30)], delta=1e-5),
    dict(skellam=[dict(mu=0.5, l1=3, l2=2, steps=7)], gaussian=[dict(z=1.5, steps=3)], delta=1e-6),
]
for c in mixed:
    r = []
    for a in ORDERS:
        t = mp.mpf(0)
        for s_ in c['skellam']: t += sk_rdp_mu(a, s_['l2'], s_['l1'], s_['mu'])*s_['steps']
        for g in c['gaussian']: t += mp.mpf(a)/(2*mp.mpf(g['z'])**2)*g['steps']
        r.append(t)
    e, a = eps_improved(r, c['delta'])
    print(json.dumps(dict(kind='composed', **c, epsilon=float(e), order=a)))
# Skellam(V) pmf: P(k) = e^{-V} I_|k|(V) for Poisson(V/2) - Poisson(V/2).
def sk_pmf(k, v):
    v = mp.mpf(v)
    return mp.exp(-v) * mp.besseli(abs(k), v)
for v, delta_shift, alpha in [(20, 1, 2), (20, 3, 4), (100, 5, 3), (8, 2, 8)]:
    K = int(v + 60*mp.sqrt(v) + 50)
    s = mp.fsum(sk_pmf(k - delta_shift, v)**alpha * sk_pmf(k, v)**(1-alpha) for k in range(-K, K+1))
    exact = mp.log(s)/(alpha-1)
    bound = rdp_bound(alpha, delta_shift, delta_shift, v)
    gauss = mp.mpf(alpha)*delta_shift**2/(2*v)
    print(json.dumps(dict(kind='divergence', v=v, shift=delta_shift, alpha=alpha, exact=float(exact), bound=float(bound), gaussian=float(gauss))))
