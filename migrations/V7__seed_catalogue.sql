-- GatheRing seed, part 7: LLM providers and the model catalogue.
-- Idempotent (ON CONFLICT DO NOTHING). Prices are USD per million tokens: pricing_in (input),
-- pricing_out (output), pricing_cache_read (cached input), pricing_cache_write (cache creation,
-- Anthropic 5-minute cache). NULL = not applicable. Local (Ollama) models cost 0.

INSERT INTO agent.providers (name, api_base_url, api_type, is_local) VALUES
    ('anthropic', 'https://api.anthropic.com',    'anthropic', false),
    ('openai',    'https://api.openai.com/v1',    'openai',    false),
    ('deepseek',  'https://api.deepseek.com/v1',  'openai',    false),
    ('ollama',    'http://localhost:11434',       'ollama',    true)
ON CONFLICT DO NOTHING;

INSERT INTO agent.models (
    provider_id, model_name, model_alias, model_type, embedding_dimensions,
    pricing_in, pricing_out, pricing_cache_read, pricing_cache_write,
    extended_thinking, vision, function_calling, streaming,
    context_window, max_output, release_date, is_deprecated
)
SELECT p.id, v.model_name, v.model_alias, v.model_type, v.embedding_dimensions,
       v.pricing_in, v.pricing_out, v.pricing_cache_read, v.pricing_cache_write,
       v.extended_thinking, v.vision, v.function_calling, v.streaming,
       v.context_window, v.max_output, v.release_date::date, v.is_deprecated
FROM (VALUES
    -- provider, model_name, model_alias, type, dims,
    --   in, out, cache_read, cache_write, thinking, vision, tools, streaming, context, max_out, released, deprecated
    -- Anthropic
    ('anthropic', 'claude-opus-4-5-20251101',   'claude-opus-4-5',   'chat', NULL::integer,
        5.00::numeric, 25.00::numeric, 0.50::numeric, 6.25::numeric, true, true, true, true, 200000, 64000, '2025-11-24', false),
    ('anthropic', 'claude-opus-4-1-20250805',   'claude-opus-4-1',   'chat', NULL,
        15.00, 75.00, 1.50, 18.75, true,  true,  true, true, 200000, 32000, '2025-08-05', false),
    ('anthropic', 'claude-opus-4-20250514',     'claude-opus-4',     'chat', NULL,
        15.00, 75.00, 1.50, 18.75, true,  true,  true, true, 200000, 32000, '2025-05-22', false),
    ('anthropic', 'claude-sonnet-4-5-20250929', 'claude-sonnet-4-5', 'chat', NULL,
        3.00,  15.00, 0.30, 3.75,  true,  true,  true, true, 200000, 64000, '2025-09-29', false),
    ('anthropic', 'claude-sonnet-4-20250514',   'claude-sonnet-4',   'chat', NULL,
        3.00,  15.00, 0.30, 3.75,  true,  true,  true, true, 200000, 64000, '2025-05-22', false),
    ('anthropic', 'claude-haiku-4-5-20251001',  'claude-haiku-4-5',  'chat', NULL,
        1.00,  5.00,  0.10, 1.25,  true,  true,  true, true, 200000, 64000, '2025-10-15', false),
    ('anthropic', 'claude-3-7-sonnet-20250219', 'claude-3-7-sonnet', 'chat', NULL,
        3.00,  15.00, 0.30, 3.75,  true,  true,  true, true, 200000, 64000, '2025-02-24', true),
    ('anthropic', 'claude-3-5-haiku-20241022',  'claude-3-5-haiku',  'chat', NULL,
        0.80,  4.00,  0.08, 1.00,  false, false, true, true, 200000, 8192,  '2024-10-22', false),
    -- OpenAI (cached input has no separate write price)
    ('openai', 'gpt-5',        'gpt-5',        'chat', NULL,
        1.25,  10.00, 0.125, NULL, true,  true, true, true, 400000,  128000, '2025-08-07', false),
    ('openai', 'gpt-5-mini',   'gpt-5-mini',   'chat', NULL,
        0.25,  2.00,  0.025, NULL, true,  true, true, true, 400000,  128000, '2025-08-07', false),
    ('openai', 'gpt-4.1',      'gpt-4.1',      'chat', NULL,
        2.00,  8.00,  0.50,  NULL, false, true, true, true, 1047576, 32768,  '2025-04-14', false),
    ('openai', 'gpt-4.1-mini', 'gpt-4.1-mini', 'chat', NULL,
        0.40,  1.60,  0.10,  NULL, false, true, true, true, 1047576, 32768,  '2025-04-14', false),
    ('openai', 'gpt-4.1-nano', 'gpt-4.1-nano', 'chat', NULL,
        0.10,  0.40,  0.025, NULL, false, true, true, true, 1047576, 32768,  '2025-04-14', false),
    ('openai', 'gpt-4o',       'gpt-4o',       'chat', NULL,
        2.50,  10.00, 1.25,  NULL, false, true, true, true, 128000,  16384,  '2024-05-13', false),
    ('openai', 'gpt-4o-mini',  'gpt-4o-mini',  'chat', NULL,
        0.15,  0.60,  0.075, NULL, false, true, true, true, 128000,  16384,  '2024-07-18', false),
    ('openai', 'o3',           'o3',           'chat', NULL,
        2.00,  8.00,  0.50,  NULL, true,  true, true, true, 200000,  100000, '2025-04-16', false),
    ('openai', 'o4-mini',      'o4-mini',      'chat', NULL,
        1.10,  4.40,  0.275, NULL, true,  true, true, true, 200000,  100000, '2025-04-16', false),
    ('openai', 'text-embedding-3-small', 'text-embedding-3-small', 'embedding', 1536,
        0.02,  0.00,  NULL,  NULL, false, false, false, false, 8191, NULL, '2024-01-25', false),
    ('openai', 'text-embedding-3-large', 'text-embedding-3-large', 'embedding', 3072,
        0.13,  0.00,  NULL,  NULL, false, false, false, false, 8191, NULL, '2024-01-25', false),
    -- DeepSeek (V3.2 behind both names; cache_read = cache-hit input price)
    ('deepseek', 'deepseek-chat',     'deepseek-chat',     'chat', NULL,
        0.28,  0.42,  0.028, NULL, false, false, true,  true, 128000, 8192,  '2025-09-29', false),
    ('deepseek', 'deepseek-reasoner', 'deepseek-reasoner', 'chat', NULL,
        0.28,  0.42,  0.028, NULL, true,  false, false, true, 128000, 65536, '2025-09-29', false),
    -- Ollama (local, free)
    ('ollama', 'llama3.2',         'llama3.2',         'chat',      NULL,
        0.00,  0.00,  NULL,  NULL, false, false, true,  true,  131072, 8192, '2024-09-25', false),
    ('ollama', 'qwen2.5-coder',    'qwen2.5-coder',    'chat',      NULL,
        0.00,  0.00,  NULL,  NULL, false, false, true,  true,  32768,  8192, '2024-09-19', false),
    ('ollama', 'nomic-embed-text', 'nomic-embed-text', 'embedding', 768,
        0.00,  0.00,  NULL,  NULL, false, false, false, false, 8192,   NULL, '2024-02-01', false)
) AS v (provider, model_name, model_alias, model_type, embedding_dimensions,
        pricing_in, pricing_out, pricing_cache_read, pricing_cache_write,
        extended_thinking, vision, function_calling, streaming,
        context_window, max_output, release_date, is_deprecated)
JOIN agent.providers p ON p.name = v.provider
ON CONFLICT DO NOTHING;
