"""The Chinese (Simplified) catalog: every English problem text the service can send, translated.

To translate a new message, add one line to MESSAGES: the English text exactly as it is written
where it is raised, with each value (`%s` in SQL `format`, `{...}` in a Python f-string) as a
placeholder, and the Chinese with the same placeholders:

    "account {account_id:value} may hold at most {cap:int} minutes": "超过存储上限：账户 {account_id} 最多只能存 {cap} 分钟。",

Placeholder kinds: none (any text; one per message at most), `field` (a parameter name or JSON
path), `value` (an id or a date: no spaces), `int`, `number`, `code` (a name in backticks), `type`
(msgspec's type names, translated), `pattern` (a quoted regular expression, described in words).
Values stay as they are: ids, numbers, field paths and slugs appear unchanged in the Chinese.
tests/unit/test_message_catalog.py proves that every message in the sources has its line here and
that every line here is still used.

Write for the people who read these: coordinators and members of a community, many over 60. Plain,
polite sentences that say what happened and, where there is one, what to do; 分钟 for minutes.
"""

from __future__ import annotations

import ast
from http import HTTPStatus

from timebank.i18n.catalog import Catalog, Derived, Kind

# --- the service's own messages (SQL `_fail`, Python raises, `errors[].message`) ------------------

MESSAGES: dict[str, str] = {
    # Who may do what (401, 403).
    "a valid bearer token is required": "请提供有效的登录凭证（Bearer 令牌）。",
    "send one Authorization header, not several": "请只发送一个 Authorization 请求头，不要发送多个。",
    "unknown principal": "找不到这个登录身份，请使用有效的登录凭证。",
    "too many failed authentications from this address": "从这个地址登录失败的次数太多，请稍后再试。",
    "the caller may not do this": "您没有执行这项操作的权限。",
    "only an admin may do this": "只有系统管理员可以执行这项操作。",
    "only an admin may create communities": "只有系统管理员可以创建社区。",
    "only an admin may grant the coordinator or auditor role": "只有系统管理员可以授予协调员或审计员角色。",
    "only admins, auditors and coordinators may read the audit trail": "只有管理员、审计员和协调员可以查看审计记录。",
    "only coordinators and auditors may list members": "只有协调员和审计员可以查看成员名单。",
    "only coordinators and auditors may list a community's transactions": "只有协调员和审计员可以查看社区的交易列表。",
    "only coordinators and auditors may list a community's holds": "只有协调员和审计员可以查看社区的冻结列表。",
    "members may read only their own record": "成员只能查看自己的资料。",
    "members may list only their own tokens": "成员只能查看自己的登录凭证。",
    "no such token": "找不到这个登录凭证。",
    "TIMEBANK_ADMIN_TOKEN was revoked; choose a new token": "TIMEBANK_ADMIN_TOKEN 已被吊销，请换一个新的令牌。",
    "the request's URL has a character that must be percent-encoded, such as a space or a control character"
    " (for example ?q=%E5%91%A8)": "请求的网址里有必须经过百分号编码的字符，例如空格或控制字符"
    "（查“周”可以写 ?q=%E5%91%A8 或 ?q=周）。",
    "the request is not valid HTTP/1.1": "这个请求不是有效的 HTTP/1.1 请求。",
    "members may read only their own account": "成员只能查看自己的账户。",
    "members may read only transactions on their own account": "成员只能查看自己账户上的交易。",
    "members may read only their own holds": "成员只能查看自己的冻结记录。",
    # What does not exist (404).
    "no such community": "找不到这个社区。",
    "no community {slug}": "找不到社区 {slug}。",
    "no such member": "找不到这位成员。",
    "no member with this number": "没有这个会员号的成员。",
    "no such date or time": "没有这个日期或时间。",
    "a date and a time": "请填写日期和时间。",
    "no such account": "找不到这个账户。",
    "no such transaction": "找不到这笔交易。",
    "no such hold": "找不到这笔冻结。",
    # What exists already (409).
    "a community with slug {slug:value} already exists": "社区代码 {slug} 已经被另一个社区用了，请换一个。",
    "a community with this slug already exists": "这个社区代码已经被另一个社区用了，请换一个。",
    "already used by another community": "已被另一个社区使用",
    "another member of this community already has this phone": "本社区已有另一位成员登记了这个电话号码。",
    "another member of this community already has this external_ref": "本社区已有另一位成员登记了这个外部编号 external_ref。",
    "already used by another member of this community": "已被本社区另一位成员使用",
    # Idempotency-Key.
    "this write needs an Idempotency-Key header": "这项操作需要带上 Idempotency-Key 请求头，以免重复记账。",
    "send one Idempotency-Key header, not several": "请只发送一个 Idempotency-Key 请求头，不要发送多个。",
    "Idempotency-Key must be 1 to {max_chars:int} printable ASCII characters": "Idempotency-Key 必须是 1 到 {max_chars} 个可打印的 ASCII 字符。",
    "1 to 200 printable ASCII characters": "1 到 200 个可打印的 ASCII 字符",
    "repeated header": "请求头重复",
    "this Idempotency-Key was used with a different request": "这个 Idempotency-Key 已经用在另一个不同的请求上了，请换一个新的。",
    # Amounts and balances (422).
    "minutes must be between 1 and {max_minutes:int}": "时长必须在 1 到 {max_minutes} 分钟之间。",
    "minutes must be a multiple of {unit:int}": "时长必须是 {unit} 分钟的整数倍。",
    "minutes are out of range": "时长超出了允许的范围。",
    "account {account_id:value} cannot give {minutes:int} minutes: balance {balance:int}, held {held:int}, lowest allowed {floor:int}": "可用余额不足：账户 {account_id} 可用 {spendable} 分钟，本次需要 {minutes} 分钟（余额 {balance} 分钟，已冻结 {held} 分钟，最低可到 {floor} 分钟）。",
    "account {account_id:value} cannot hold {minutes:int} minutes: balance {balance:int}, held {held:int}, lowest allowed {floor:int}": "可用余额不足，无法冻结：账户 {account_id} 可用 {spendable} 分钟，本次要冻结 {minutes} 分钟（余额 {balance} 分钟，已冻结 {held} 分钟，最低可到 {floor} 分钟）。",
    "account {account_id:value} may hold at most {cap:int} minutes": "超过存储上限：账户 {account_id} 最多只能存 {cap} 分钟。",
    "only members with the volunteer role can be credited": "只有志愿者才能记入服务时间。",
    "a member cannot redeem hours with itself": "成员不能用自己的时间兑换自己提供的服务。",
    "a member cannot transfer hours to itself": "成员不能把时间转给自己。",
    "a member cannot pay itself": "成员不能付给自己。",
    "hours cannot move between communities": "时间不能在不同社区之间转移。",
    "the provider belongs to another community": "服务提供者属于另一个社区，时间不能跨社区转移。",
    "the recipient belongs to another community": "接收人属于另一个社区，时间不能跨社区转移。",
    "give exactly one target: to_member_id, or to_pool true": "请只指定一个接收方：填写 to_member_id（转给成员），或者把 to_pool 设为 true（捐给互助池）。",
    "exactly one of to_member_id and to_pool": "to_member_id 和 to_pool 只能选一个",
    "service_date {date:value} is after today ({today:value} in {time_zone:value})": "服务日期 {date} 晚于今天（{time_zone} 时区的今天是 {today}），不能登记还没到的日子。",
    "after today in the community's time zone": "晚于社区所在时区的今天",
    # Reversals and holds (409, 422).
    "this transaction was already reversed": "这笔交易已经冲正过了，不能再次冲正。",
    "a reversal cannot itself be reversed": "冲正交易本身不能再冲正。",
    "this hold was already captured, released or expired": "这笔冻结已经扣除、释放或过期了，不能再处理。",
    "the hold reserves only {minutes:int} minutes": "这笔冻结只有 {minutes} 分钟，扣除的时长不能超过它。",
    "expires_at must be in the future and within 366 days": "expires_at（到期时间）必须晚于现在，并且在 366 天以内。",
    "must be in the future and within 366 days": "必须晚于现在，并且在 366 天以内",
    # The request's form (400, 415).
    "the request is not valid": "请求内容有误。",
    "invalid value": "取值无效",
    "the field {field} appears more than once": "字段 {field} 出现了不止一次。",
    "duplicated field": "字段重复",
    "the body is not valid JSON (UTF-8, one value, no duplicated keys, nesting within limits)": "请求内容不是有效的 JSON（须为 UTF-8 编码、只有一个值、没有重复的字段、嵌套层数不超过限制）。",
    "not valid JSON": "不是有效的 JSON",
    "this request needs a JSON body": "这个请求需要附带 JSON 格式的内容。",
    "required": "必填",
    "send the body as application/json": "请以 application/json 格式发送请求内容。",
    "cursor is not one this service issued": "分页游标 cursor 无效，请使用上一页返回的 next_cursor。",
    "invalid cursor": "分页游标无效",
    "cursor must be 1 to {max_chars:int} characters of A-Z, a-z, 0-9, _ and -": "分页游标 cursor 必须是 1 到 {max_chars} 个字符，只能用 A-Z、a-z、0-9、_ 和 -。",
    "not a cursor": "不是分页游标",
    "limit must be at least 1": "每页条数 limit 至少是 1。",
    "must be at least 1": "至少是 1",
    "give the query parameter {name:field} once": "查询参数 {name} 只能给一次。",
    "given more than once": "给了不止一次",
    "{name:field} cannot be null: leave it out instead": "{name} 不能是 null；不需要时请直接不写这个参数。",
    "not a value": "不是有效的值",
    "each role may be given once": "每个角色只能写一次。",
    "roles must be unique": "角色不能重复",
    "{name:field} needs a time zone, e.g. 2026-11-27T08:30:00Z": "{name} 需要带时区，例如 2026-11-27T08:30:00Z。",
    "an RFC 3339 timestamp with a zone": "带时区的 RFC 3339 时间",
    "{name:field} must lie between {first:int} and {last:int}": "{name} 必须在 {first} 年到 {last} 年之间。",
    "a moment between years 1900 and 2999": "1900 年到 2999 年之间的时间",
    "{name:field} must be between {first:value} and {last:value}": "{name} 必须在 {first} 到 {last} 之间。",
    "between {first:value} and {last:value}": "在 {first} 到 {last} 之间",
    "{name:field} must be a date (2026-12-01) or an RFC 3339 timestamp with a zone (2026-12-01T08:30:00+08:00)": "{name} 必须是日期（如 2026-12-01），或带时区的 RFC 3339 时间（如 2026-12-01T08:30:00+08:00）。",
    "a date YYYY-MM-DD or an RFC 3339 timestamp with a zone": "日期 YYYY-MM-DD，或带时区的 RFC 3339 时间",
    "`to` is before `from`": "结束时间 `to` 早于开始时间 `from`。",
    "before from": "早于 from",
    "not a refusal": "这不是一条拒绝记录。",
    # Community policy (400, 422).
    "{field} is not a policy field": "{field} 不是社区规则（policy）里的字段。",
    "time_zone must be an IANA time zone name such as Asia/Shanghai": "时区 time_zone 必须是 IANA 时区名称，例如 Asia/Shanghai。",
    "not an IANA time zone name": "不是 IANA 时区名称",
    # The service's side (409, 500, 503).
    "TIMEBANK_ADMIN_TOKEN is already the token of a non-admin principal": "TIMEBANK_ADMIN_TOKEN 已经是一个非管理员身份的令牌，不能再用作管理员令牌。",
    "rejected by rule {rule:field}": "{rule_meaning}（数据库规则 {rule}）。",
    "rejected by a database rule": "请求被数据库规则拒绝。",
    "a value in the request is not acceptable": "请求中有一个值无法接受。",
    "the service failed to handle this request": "服务出现故障，未能处理这个请求。请稍后再试；如果问题持续，请联系管理员。",
    "the service is shutting down": "服务正在停止，请稍后再试。",
    "the database is not available": "数据库暂时无法连接，请稍后再试。",
    "the database took too long to answer": "数据库响应超时，这次没有完成。请稍后再试。",
    "the write kept conflicting with concurrent writes; retry with the same key": "同时有其他操作在修改相同的数据，这次没有完成，也没有记账。请用同一个 Idempotency-Key 重试。",
    # The ledger's own checks at commit (SQLSTATE TB901): only a fault of the service reaches them.
    "posting to unknown transaction {transaction_id:value}": "记账分录指向不存在的交易 {transaction_id}。",
    "transaction {transaction_id:value} does not balance: {count:int} postings summing to {total:int}": "交易 {transaction_id} 收支不平衡：{count} 条分录合计 {total} 分钟。",
    "transaction {transaction_id:value} posts outside its community": "交易 {transaction_id} 记到了本社区以外的账户。",
    "reversal {reversal_id:value} does not mirror transaction {transaction_id:value}": "冲正交易 {reversal_id} 与原交易 {transaction_id} 不对应。",
    "transaction {transaction_id:value} has an amount outside the community policy": "交易 {transaction_id} 的时长不符合社区规定。",
    # Monthly reports (timebank/reports, timebank/http/months.py).
    "only coordinators and auditors may read a community's reports": "只有协调员和审计员可以查看社区的报表。",
    "{name:field} is required: a month written YYYY-MM, such as 2026-11": "请提供 {name}（月份），写成 YYYY-MM，例如 2026-11。",
    "{name:field} must be a month written YYYY-MM, such as 2026-11": "{name} 必须是写成 YYYY-MM 的月份，例如 2026-11（月份为 01 到 12）。",
    "a month YYYY-MM, the month 01 to 12": "写成 YYYY-MM 的月份，月份为 01 到 12",
    "{name:field} must lie between {first:int}-01 and {last:int}-12": "{name} 必须在 {first} 年 1 月到 {last} 年 12 月之间。",
    "a month between 1900-01 and 2999-12": "1900 年 1 月到 2999 年 12 月之间的月份",
    # Services: service types and service requests (409, 422, 403, 404).
    "no such service request": "找不到这项服务请求。",
    "members may read only their own requests, and volunteers the open ones": "成员只能查看自己的服务请求；志愿者还可以查看待认领的请求。",
    "this hold belongs to a service request; confirm or cancel the request instead": "这笔冻结属于一项服务请求，请通过确认或取消这项服务请求来处理。",
    "the service type {code:value} already exists in this community": "本社区已经有服务类型 {code}，请换一个代码。",
    "already used by another service type of this community": "已被本社区的另一个服务类型使用",
    "no service type {code:value}": "找不到服务类型 {code}。",
    "only a coordinator may book a service paid by the {funding:value}": "只有协调员可以预约由 {funding} 支付的服务。",
    "{code:value} is not an active service type of this community": "{code} 不是本社区正在使用的服务类型。",
    "not an active service type of this community": "不是本社区正在使用的服务类型",
    "scheduled_at must lie between 7 days ago and 366 days ahead": "预约时间 scheduled_at 必须在 7 天前到 366 天后之间。",
    "between 7 days ago and 366 days ahead": "在 7 天前到 366 天后之间",
    "only a member can claim a request; name the provider_member_id": "只有成员本人可以认领服务请求；请填写 provider_member_id 指定服务人。",
    "only volunteers can claim a service request": "只有志愿者可以认领服务请求。",
    "only a coordinator may assign a request to someone else": "只有协调员可以把服务请求指派给别人。",
    "the provider must be a volunteer of the request's community": "服务人必须是这项服务请求所在社区的志愿者。",
    "not a volunteer of this community": "不是本社区的志愿者",
    "only members with the volunteer role can provide a service": "只有具有志愿者角色的成员才能提供服务。",
    "not a volunteer": "不是志愿者",
    "a member cannot provide a service to itself": "成员不能为自己提供服务。",
    "only the provider or a coordinator may check in": "只有服务人或协调员可以签到。",
    "only the provider or a coordinator may report the service": "只有服务人或协调员可以登记服务时长。",
    "only the member served or a coordinator may confirm the service": "只有被服务的成员或协调员可以确认服务。",
    "only a coordinator may confirm other minutes than those reported": "只有协调员可以按与登记不同的时长确认服务。",
    "a disputed service is settled by a coordinator": "有异议的服务由协调员处理。",
    "only the member served or a coordinator may dispute the service": "只有被服务的成员或协调员可以对服务提出异议。",
    "only the member served, whoever asked or a coordinator may cancel the request": "只有被服务的成员、提出请求的人或协调员可以取消这项服务请求。",
    "a request that is {status:value} cannot be assigned": "状态为 {status} 的服务请求不能再认领或指派。",
    "a request that is {status:value} cannot be checked in": "状态为 {status} 的服务请求不能签到。",
    "a request that is {status:value} cannot be reported": "状态为 {status} 的服务请求不能登记服务时长。",
    "a request that is {status:value} cannot be confirmed": "状态为 {status} 的服务请求不能确认。",
    "a request that is {status:value} cannot be disputed": "状态为 {status} 的服务请求不能提出异议。",
    "a request that is {status:value} cannot be cancelled": "状态为 {status} 的服务请求不能取消。",
    "a request that is {status:value} cannot be withdrawn from": "状态为 {status} 的服务请求不能退出。",
    "the hold of this request expired at {expires_at}; the request is being cancelled": "这项服务请求的冻结已于 {expires_at} 过期，请求即将被取消。",
    # people (branch people): eligibility, relatives, member changes, PINs, activity crediting.
    "volunteers must be at least {age:int} years old, and member {member_id:value} has no birth_date on record to show it": "本社区志愿者须年满 {age} 岁，成员 {member_id} 没有登记出生日期，无法核对年龄。",
    "redeeming hours needs an age of at least {age:int}, and member {member_id:value} has no birth_date on record to show it": "本社区须年满 {age} 岁才能使用时间，成员 {member_id} 没有登记出生日期，无法核对年龄。",
    "volunteers must be at least {age:int} years old; member {member_id:value} is {actual:int} on {date:value}": "本社区志愿者须年满 {age} 岁；成员 {member_id} 在 {date} 时为 {actual} 岁。",
    "redeeming hours needs an age of at least {age:int}; member {member_id:value} is {actual:int} on {date:value}": "本社区须年满 {age} 岁才能使用时间；成员 {member_id} 在 {date} 时为 {actual} 岁。",
    "hours from the pool go only to members marked pool_eligible; member {member_id:value} is not": "公益时间池的时间只发给标记为可受助（pool_eligible）的成员；成员 {member_id} 未被标记。",
    "this community allows gifts only to relatives; member {to:value} is not a linked relative of member {sender:value}": "本社区只允许把时间赠与亲属；成员 {to} 不是成员 {sender} 已登记的亲属。",
    "not a linked relative of the sender": "不是转出人已登记的亲属",
    "too many wrong PINs for this member; PIN changes are locked until {until:value}": "该成员输错密码次数过多，修改密码已暂时锁定，到 {until} 解锁。",
    "a member changing its own PIN gives its current_pin": "成员修改自己的密码时，需要提供当前密码（current_pin）。",
    "required when members change their own PIN": "成员修改自己的密码时必须填写",
    "current_pin does not match": "当前密码不正确。",
    "members may read only their own relatives": "成员只能查看自己的亲属。",
    "{field:field} is not a member field that can be changed": "{field} 不是可以修改的成员字段。",
    "a member without a PIN gets its first PIN from a coordinator": "成员还没有密码，第一次密码需由社区工作人员设置。",
    "no such relative member": "要关联的亲属成员不存在。",
    "a member cannot be its own relative": "成员不能把自己登记为亲属。",
    "relatives are linked within one community": "只能关联同一社区的成员为亲属。",
    "these members are already linked as relatives; remove the link to change it": "这两位成员已登记为亲属；如需更改关系，请先解除关联。",
    "these members are not linked as relatives": "这两位成员没有登记为亲属。",
    "the member itself": "就是该成员本人",
    "a member of another community": "是其他社区的成员",
    "already linked": "已经关联",
    "credits must hold 1 to 500 items": "credits 须包含 1 到 500 项。",
    "this member is already in the batch": "该成员已在本批次中",
    "{failing:int} of {total:int} credits break a rule (the first: {code:value}); nothing was credited": "{total} 项中有 {failing} 项不符合规定（第一项原因：{code}），全部未记入。",
    "not a member of this community": "不是本社区的成员",
    "the member does not have the volunteer role": "该成员不是志愿者",
    "minutes outside the community's range": "时长超出本社区允许的范围",
    "minutes not a multiple of the community's unit": "时长不是本社区计量单位的整数倍",
    "younger than volunteer_min_age on the service date, or no birth_date": "服务当天未满志愿者最低年龄，或没有登记出生日期",
    "the credit would take the balance above the community's cap": "记入后余额将超过本社区的存储上限",
    "only staff and auditors may read credit batches": "只有社区工作人员和审计人员可以查看批量记时。",
    "no such credit batch": "该批量记时不存在。",
    # The public log (timebank/log, sql/functions/80_public_log.sql).
    "no checkpoint has been signed yet": "公开日志还没有签署过任何检查点。",
    # The passbook PDF (503 pdf_font_missing).
    "no font with Chinese glyphs is installed for the passbook PDF: install one with `apt-get install fonts-noto-cjk`, or name a .ttf, .otf or .ttc font in TIMEBANK_PDF_FONT": "服务器上没有可以打印中文的字体，无法生成存折 PDF。请安装字体：`apt-get install fonts-noto-cjk`，或在 TIMEBANK_PDF_FONT 中指定一个含中文字形的 .ttf、.otf 或 .ttc 字体文件。",
    "TIMEBANK_PDF_FONT names {path}, which is not a font file with Chinese glyphs: name a .ttf, .otf or .ttc font that has them, or install one with `apt-get install fonts-noto-cjk`": "TIMEBANK_PDF_FONT 指定的 {path} 不是含中文字形的字体文件。请指定含中文字形的 .ttf、.otf 或 .ttc 字体，或安装字体：`apt-get install fonts-noto-cjk`。",
    "the transaction is not in the public log yet; retry shortly": "这笔交易还没有写入公开日志，请稍后再试。",
    "tree_size {size:int} is not the size of a signed checkpoint that contains leaf {index:int}": "tree_size {size} 不是一个已签署、且包含第 {index} 条记录的检查点的大小。",
    "use a signed size above {index:int}, at most {latest:int}": "请使用大于 {index}、不超过 {latest} 的已签署大小",
    "first is larger than second": "first 大于 second。",
    "larger than second": "大于 second",
    "no checkpoint of {size:int} leaves is signed yet; the latest has {latest:int}": "还没有签署包含 {size} 条记录的检查点；最新的检查点有 {latest} 条。",
    "the log has {size:int} leaves, not {expected:int}": "公开日志现有 {size} 条记录，而不是 {expected} 条。",
    "the nodes given are not the {count:int} the new leaves complete": "提交的哈希节点不是新记录所构成的那 {count} 个节点。",
    "the log has {size:int} leaves, too few for a checkpoint of size {wanted:int}": "公开日志只有 {size} 条记录，不足以签署大小为 {wanted} 的检查点。",
    "the root given is not the log's root at size {size:int}": "提交的根哈希不是公开日志在大小 {size} 时的根哈希。",
    "a different checkpoint of size {size:int} is already recorded": "已经记录了另一个大小为 {size} 的检查点。",
}

# --- messages of the libraries: msgspec's validation, Litestar's HTTP errors --------------------

MSGSPEC_MESSAGES: dict[str, str] = {
    "Expected `{expected:type}`, got `{got:type}`": "类型不对：应为{expected}，收到的是{got}",
    "Expected `{type:type}` >= {bound:number}": "应为不小于 {bound} 的{type}",
    "Expected `{type:type}` > {bound:number}": "应为大于 {bound} 的{type}",
    "Expected `{type:type}` <= {bound:number}": "应为不大于 {bound} 的{type}",
    "Expected `{type:type}` < {bound:number}": "应为小于 {bound} 的{type}",
    "Expected `int` that's a multiple of {factor:number}": "应为 {factor} 的整数倍",
    "Expected `str` of length >= {length:int}": "内容太短：至少 {length} 个字",
    "Expected `str` of length <= {length:int}": "内容太长：最多 {length} 个字",
    "Expected `array` of length >= {length:int}": "项数太少：至少 {length} 项",
    "Expected `array` of length <= {length:int}": "项数太多：最多 {length} 项",
    "Expected `str` matching regex {pattern:pattern}": "格式不对：{pattern}",
    "Expected `datetime` with a timezone component": "时间需要带时区，例如 2026-11-27T08:30:00Z",
    "Object missing required field `{field:code}`": "缺少必填的字段 `{field}`",
    "Object contains unknown field `{field:code}`": "不认识的字段 `{field}`，请去掉",
    "Invalid enum value {value}": "{value} 不是允许的取值",
    "Invalid UUID": "编号格式不对，应为 UUID，例如 123e4567-e89b-12d3-a456-426614174000",
    "Invalid RFC3339 encoded datetime": "时间格式不对，应为 RFC 3339 格式，例如 2026-11-27T08:30:00Z",
    "Invalid RFC3339 encoded date": "日期格式不对，应为“年-月-日”，例如 2026-11-01",
    "Number out of range": "数字超出了范围",
}

# Litestar's own errors carry the status phrase as their text (the routing 404 and 405, and 413).
LITESTAR_MESSAGES: dict[str, str] = {
    HTTPStatus.BAD_REQUEST.phrase: "请求有误。",
    HTTPStatus.UNAUTHORIZED.phrase: "需要登录凭证。",
    HTTPStatus.FORBIDDEN.phrase: "您没有执行这项操作的权限。",
    HTTPStatus.NOT_FOUND.phrase: "没有这个地址，请检查网址是否正确。",
    HTTPStatus.METHOD_NOT_ALLOWED.phrase: "这个地址不支持这种请求方法。",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE.phrase: "不支持这种内容类型。",
    HTTPStatus.TOO_MANY_REQUESTS.phrase: "请求太频繁，请稍后再试。",
    HTTPStatus.SERVICE_UNAVAILABLE.phrase: "服务暂时不可用，请稍后再试。",
} | {"Request Entity Too Large": "请求内容太大，超过了允许的上限。"}

# --- how values of the kinds `type` and `pattern` are said in Chinese ----------------------------

# msgspec's names of JSON types, as they appear in "Expected `int | null`, got `str`".
TYPE_NAMES: dict[str, str] = {
    "int": "整数",
    "float": "数字",
    "str": "文字",
    "bool": "true 或 false",
    "null": "空值 null",
    "object": "JSON 对象",
    "array": "列表",
    "uuid": "编号（UUID）",
    "datetime": "时间",
    "date": "日期",
    "time": "时刻",
    "duration": "时长",
    "decimal": "小数",
    "bytes": "二进制数据",
}

# The patterns of the request models' strings, said in words (a test proves every pattern has one).
PATTERNS: dict[str, str] = {
    r"^[^\x00]*$": "不能包含空字符（NUL）",
    r"^[a-z0-9][a-z0-9-]{1,62}$": "只能用小写字母、数字和连字符（-），以字母或数字开头，共 2 到 63 个字符",
    r"^[0-9+() -]+$": "只能包含数字、空格和 + - ( ) 这几个符号",
    r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$": "应为时区名称，例如 Asia/Shanghai",
    r"^[0-9]{6}$": "应为 6 位数字",
    r"^[a-z][a-z0-9_]{1,39}$": "只能用小写字母、数字和下划线（_），以字母开头，共 2 到 40 个字符",
}


# What the database's rules (constraints) that answer with their own code but no sentence of their
# own mean (db.CONSTRAINT_CODES less db.CONSTRAINT_DETAILS, whose sentences are in MESSAGES).
CONSTRAINTS: dict[str, str] = {
    "transactions_reverses_key": "这笔交易已经冲正过了，不能再次冲正",
    "hold_resolutions_pkey": "这笔冻结已经处理过了",
    "transactions_hold_id_key": "这笔冻结已经扣除过了",
}


def _rule_meaning(rule: str) -> str:
    return CONSTRAINTS.get(rule, "请求与数据库的规则不符，没有保存")


def _type_name(value: str) -> str:
    return "或".join(TYPE_NAMES.get(part, f"`{part}`") for part in value.split(" | "))


def _pattern(value: str) -> str:
    try:
        pattern = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pattern = None
    described = PATTERNS.get(pattern) if isinstance(pattern, str) else None
    return described or f"应符合格式 {value}"


def _spendable(balance: str, held: str, floor: str) -> str:
    """What an account can still give: its balance less its holds, down to its floor."""
    return str(int(balance) - int(held) - int(floor))


KINDS: dict[str, Kind] = {
    "": Kind(r".+?"),  # any text; at most one such placeholder per template (a test holds to it)
    "field": Kind(r"[A-Za-z_$][\w$.\[\]-]*"),  # a parameter name or JSON path
    "value": Kind(r"\S+"),  # an id, a date: no spaces
    "int": Kind(r"-?[0-9]+"),
    "number": Kind(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"),
    "code": Kind(r"[^`]+"),
    "type": Kind(r"[^`]+", _type_name),
    "pattern": Kind(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", _pattern),
}

DERIVED: dict[str, Derived] = {
    "spendable": Derived(("balance", "held", "floor"), _spendable),
    "rule_meaning": Derived(("rule",), _rule_meaning),
}

CATALOG = Catalog(MESSAGES | MSGSPEC_MESSAGES | LITESTAR_MESSAGES, KINDS, DERIVED)
