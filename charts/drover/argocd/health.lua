-- Argo CD health check of Drover's four kinds (drover.dev FoundationModel, FineTuneJob,
-- VectorIndex, InferenceService). Register it in argocd-cm under
-- resource.customizations.health.drover.dev_<Kind> (see the chart's README).
--
-- It reads what the operator writes (drover/policy/conditions.py `summarise`): Ready is the
-- summary of the kind's sub-conditions, Degraded is True for a failure a person must fix,
-- Progressing for one that resolves itself. An InferenceService also reports its rollout:
-- a canary being rolled out is Progressing, a paused one Suspended, a rolled-back one Degraded
-- (its RolloutHealthy condition) until the spec names another model.
local hs = {}

local function describe(cond)
  local text = cond.reason or ""
  if cond.message ~= nil and cond.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. cond.message
  end
  return text
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Drover operator to report status"
  return hs
end

local conditions = {}
for _, cond in ipairs(obj.status.conditions) do
  if cond.type ~= nil then
    conditions[cond.type] = cond
  end
end
local ready = conditions["Ready"]

-- A status written for an older spec says nothing about the current one (the same rule as
-- kstatus' checkGeneration, applied to the Ready condition's observedGeneration as well).
local generation = obj.metadata.generation
if generation ~= nil then
  local stale = obj.status.observedGeneration ~= nil and obj.status.observedGeneration ~= generation
  if ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration ~= generation then
    stale = true
  end
  if stale then
    hs.status = "Progressing"
    hs.message = "Waiting for the Drover operator to observe generation " .. tostring(generation)
    return hs
  end
end

local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end

if obj.kind == "InferenceService" then
  local rollout = obj.status.rollout
  local healthy = conditions["RolloutHealthy"]
  if healthy ~= nil and healthy.status == "False" then
    hs.status = "Degraded"
    hs.message = describe(healthy)
    return hs
  end
  if rollout ~= nil and rollout.phase == "Paused" then
    hs.status = "Suspended"
    hs.message = "Rollout paused: " .. (rollout.reason or "")
    return hs
  end
  if rollout ~= nil and (rollout.phase == "Deploying" or rollout.phase == "Warming"
      or rollout.phase == "Step" or rollout.phase == "Analysing") then
    hs.status = "Progressing"
    hs.message = "Rollout " .. rollout.phase .. ": " .. (rollout.reason or "")
    return hs
  end
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
