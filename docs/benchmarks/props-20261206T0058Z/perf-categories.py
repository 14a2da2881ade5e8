import collections,re,sys
stacks=open(sys.argv[1]).read().split('\n\n')
c=collections.Counter(); n=0
def cat(s, thread):
    if 'ZSTD_compress' in s: return 'zstd compress'
    if 'ZSTD_decompress' in s or 'RawCodec::Decompress' in s: return 'zstd decompress'
    if 'PropertyPacker' in s: return 'properties typed+packed'
    if 'ProfileEngine::Process' in s: return 'engine'
    if 'MessageValidator' in s: return 'validation'
    if 'JournalReader' in s or 'EventCodec::Read' in s: return 'journal decode'
    if 'AppendEventProperties' in s: return 'append properties'
    if 'AppendEvents' in s: return 'append events'
    if 'gc_heap' in s or 'WKS::' in s or 'SVR::' in s: return 'GC'
    leaf=s.split('\n')[1] if '\n' in s else ''
    if 'libduckdb' in leaf: return 'duckdb (other)'
    if 'kernel' in leaf: return 'kernel (other)'
    return 'other'
for s in stacks:
    ls=s.strip().split('\n')
    if not ls or not ls[0]: continue
    n+=1
    th=re.match(r'(.*?)\s+\d+\s+\d+\.\d+:', ls[0])
    th=th.group(1).strip() if th else '?'
    c[(th if th in ('Tessera DuckDB','Tessera journal','.NET TP Worker','dotnet') else 'other threads', cat(s.strip(), th))]+=1
tot=collections.Counter()
for (t,k),v in c.items(): tot[k]+=v
for k,v in tot.most_common(): print(f'{v/n*100:5.1f}% {k}')
print()
for (t,k),v in sorted(c.items(), key=lambda x:-x[1])[:25]: print(f'{v/n*100:5.1f}% {t:16} {k}')
