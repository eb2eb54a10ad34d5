"""A pymesos 0.3.15 operator client that reserves resources of the one agent for role `ops`,
unreserves them and marks the agent gone, reading GET_AGENTS after each step. Prints one
JSON line with the roles of the agent's resources after each step.

usage: python -I pymesos_operator_reserve.py MASTER
"""
import json
import sys

from pymesos import MesosOperatorMasterDriver, OperatorMaster


def agents(driver):
    return driver.getAgents()["get_agents"]["agents"]


def roles(driver):
    [agent] = agents(driver)
    return sorted({r.get("role", "*") for r in agent["total_resources"]})


def main():
    driver = MesosOperatorMasterDriver(sys.argv[1], OperatorMaster())
    [agent] = agents(driver)
    aid = agent["agent_info"]["id"]["value"]
    ops = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "ops",
            "reservation": {"principal": "operator"}}]
    seen = {"before": roles(driver)}
    driver.reserveResources(aid, ops)
    seen["reserved"] = roles(driver)
    driver.unreserveResources(aid, ops)
    seen["unreserved"] = roles(driver)
    driver.markAgentGone(aid)
    # (the live agent, told to shut down, comes back at once as a new agent)
    seen["gone_listed"] = aid in [a["agent_info"]["id"]["value"] for a in agents(driver)]
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
