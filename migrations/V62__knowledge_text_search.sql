-- Text search over the knowledge base, used when the LLM gateway cannot embed a query (contract
-- §2.8 search falls back from vector to text). Word matching through full-text search over the
-- first 200,000 characters of title and content ('simple' configuration: no stemming, so it
-- suits French and English alike; the cut keeps every tsvector under PostgreSQL's 1 MB limit,
-- whatever the size of an unchunked upload). Substring matches use the trigram indexes of V4.
CREATE INDEX knowledge_base_fts_idx ON memory.knowledge_base
    USING gin (to_tsvector('simple'::regconfig, left(title || ' ' || content, 200000)))
    WHERE is_active;
