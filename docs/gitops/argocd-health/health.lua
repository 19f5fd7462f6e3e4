-- Argo CD health for every Weft kind (SMI and Linkerd policy CRDs): the conditions the
-- Weft operator writes, read as kstatus (Flux) reads them.
--   Degraded     Stalled=True: the object is invalid and waits for a change.
--   Progressing  the operator has not seen this generation yet, or Reconciling=True (a
--                reference names a missing object), or Programmed=False (proxies have
--                not acknowledged this generation; the operator then sets Reconciling
--                too, for kstatus).
--   Healthy      Ready=True.
-- Ready=False alone is Progressing, as kstatus has it: Weft says Stalled when no retry helps.
hs = {}

local function conditions_by_type(status)
  local found = {}
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      found[condition.type] = condition
    end
  end
  return found
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Weft operator to report status"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Weft operator to observe generation " .. obj.metadata.generation
  return hs
end

local c = conditions_by_type(obj.status)
if is_true(c.Stalled) then
  hs.status = "Degraded"
  hs.message = c.Stalled.message
  return hs
end
if is_true(c.Reconciling) then
  hs.status = "Progressing"
  hs.message = c.Reconciling.message
  return hs
end
if c.Programmed ~= nil and c.Programmed.status ~= "True" then
  hs.status = "Progressing"
  hs.message = "Not yet programmed: " .. (c.Programmed.message or "")
  return hs
end
if is_true(c.Ready) then
  hs.status = "Healthy"
  hs.message = c.Ready.message
  return hs
end
hs.status = "Progressing"
if c.Ready ~= nil then
  hs.message = c.Ready.message
else
  hs.message = "Waiting for the Ready condition"
end
return hs
