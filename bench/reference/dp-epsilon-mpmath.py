# Reference for packages/dp/test/numerics.test.ts: ε of the Poisson-sampled Gaussian by 40-digit direct
# integration (mpmath), independent of fedtwin's series. Run: python3 bench/reference/dp-epsilon-mpmath.py
import mpmath as mp, json
mp.mp.dps = 40
def logA_frac(q,s,a):
    q=mp.mpf(q); s=mp.mpf(s); a=mp.mpf(a)
    f = lambda x: mp.npdf(x,0,s)*(mp.power(1+q*mp.expm1((2*x-1)/(2*s*s)),a)-1)
    pts=sorted(set([-mp.inf,-20*s,-10*s,0,mp.mpf(0.5),10*s,20*s,40*s,80*s+a, mp.inf]))
    return mp.log1p(mp.quad(f, pts, maxdegree=10))
def logA_int(q,s,a):
    q=mp.mpf(q); s=mp.mpf(s)
    return mp.log(mp.fsum(mp.binomial(a,i)*q**i*(1-q)**(a-i)*mp.exp(mp.mpf(i*i-i)/(2*s*s)) for i in range(a+1)))
def rdp(q,s,a):
    if q==1: return mp.mpf(a)/(2*mp.mpf(s)**2)
    la = logA_int(q,s,int(a)) if float(a).is_integer() else logA_frac(q,s,a)
    return la/(mp.mpf(a)-1)
def eps_improved(orders, r, delta):
    best=None
    for a,ri in zip(orders,r):
        if a<=1.01: continue
        a_=mp.mpf(a); d=mp.mpf(delta)
        if d**2 > -mp.expm1(-ri): e=mp.mpf(0)
        else: e = ri + mp.log1p(-1/a_) - mp.log(d*a_)/(a_-1)
        e=max(e,mp.mpf(0))
        if best is None or e<best[0]: best=(e,a)
    return best
def eps_classic(orders,r,delta):
    best=None
    for a,ri in zip(orders,r):
        e = ri + mp.log(1/mp.mpf(delta))/(mp.mpf(a)-1)
        if best is None or e<best[0]: best=(e,a)
    return best
DEF=[(i+11)/10 for i in range(99)]+list(range(11,64))+[128,256,512,1024]
OPA=[1+x/10.0 for x in range(1,100)]+list(range(12,64))
cases=[(0.01,1.1,10000,1e-5,'def'),(0.001,0.8,100000,1e-6,'def'),(0.1,3.0,500,1e-5,'def'),(0.05,0.6,1000,1e-5,'def'),(0.2,1.0,200,1e-6,'def'),(0.5,2.0,50,1e-6,'def'),(1e-4,0.5,1000000,1e-8,'def'),(0.04,1.5,2250,1e-5,'opa')]
out=[]
for q,z,T,d,o in cases:
    orders = DEF if o=='def' else OPA
    # only orders near the optimum matter; compute all to be exact
    r=[rdp(q,z,a)*T for a in orders]
    ei=eps_improved(orders,r,d); ec=eps_classic(orders,r,d)
    row=dict(q=q,z=z,T=T,delta=d,orders=o,improved=float(ei[0]),improvedOrder=ei[1],classic=float(ec[0]),classicOrder=ec[1])
    print(json.dumps(row),flush=True); out.append(row)

