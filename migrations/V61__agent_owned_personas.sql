-- Personas written through /agents (contract §2.3: POST/PATCH /agents carry a persona) belong
-- to their agent. Such a persona can be changed in place and goes with its agent; a persona that
-- belongs to no agent (builtin, or made through /personas) is a shared template, which an agent
-- edit never changes: the edit gives the agent its own copy instead.
ALTER TABLE agent.personas
    ADD COLUMN owner_agent_id bigint REFERENCES agent.agents(id) ON DELETE CASCADE;
CREATE INDEX personas_owner_agent_id_idx ON agent.personas (owner_agent_id)
    WHERE owner_agent_id IS NOT NULL;
COMMENT ON COLUMN agent.personas.owner_agent_id IS
    'The agent this persona was written for through /agents (NULL: a shared template)';
