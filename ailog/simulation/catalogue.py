"""A catalogue of realistic error kinds of Java/Kubernetes bank services, with their variable parts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

APP_NAMES = [
    "payments-api", "accounts-service", "cards-gateway", "loans-engine", "fraud-scoring", "customer-profile",
    "notifications", "statements", "fx-rates", "transfers", "auth-service", "kyc-checks", "ledger-writer",
    "atm-switch", "mobile-bff", "web-bff", "reporting", "audit-trail", "document-store", "pricing",
    "limits-service", "sepa-gateway", "swift-adapter", "instant-payments", "standing-orders", "mortgages",
    "investments", "crm-sync", "batch-settlement", "card-issuing",
]


@dataclass(frozen=True)
class ErrorKind:
    key: str
    error_type: str
    make: Callable[[random.Random], str]  # the message with its variable parts
    frames: tuple[str, ...] = ()


def _uuid(r: random.Random) -> str:
    return f"{r.getrandbits(32):08x}-{r.getrandbits(16):04x}-{r.getrandbits(16):04x}-{r.getrandbits(16):04x}-{r.getrandbits(48):012x}"


def _ip(r: random.Random) -> str:
    return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


CATALOGUE: list[ErrorKind] = [
    ErrorKind("pool-timeout", "java.sql.SQLTransientConnectionException",
              lambda r: f"HikariPool-1 - Connection is not available, request timed out after {r.randint(30000, 30500)}ms.",
              ("com.bank.{app}.repository.AccountRepository.findById", "com.bank.{app}.service.AccountService.load")),
    ErrorKind("read-timeout", "java.net.SocketTimeoutException",
              lambda r: f"Read timed out calling http://{_ip(r)}:8080/api/v1/customers/{r.randint(10000, 99999)}",
              ("com.bank.{app}.client.CustomerClient.get",)),
    ErrorKind("npe-mapper", "java.lang.NullPointerException",
              lambda r: "Cannot invoke \"String.length()\" because \"iban\" is null",
              ("com.bank.{app}.mapper.PaymentMapper.toDto", "com.bank.{app}.api.PaymentController.get")),
    ErrorKind("insufficient-funds", "com.bank.common.BusinessException",
              lambda r: f"Insufficient funds on account {r.randint(100000, 999999)}: requested {r.randint(1, 5000)}.{r.randint(0, 99):02d} EUR",
              ("com.bank.{app}.service.TransferService.execute",)),
    ErrorKind("kafka-send", "org.apache.kafka.common.errors.TimeoutException",
              lambda r: f"Expiring {r.randint(1, 40)} record(s) for topic-{r.randint(0, 11)}:{r.randint(100, 130000)} ms has passed since batch creation",
              ("com.bank.{app}.events.EventPublisher.publish",)),
    ErrorKind("deadlock", "org.springframework.dao.CannotAcquireLockException",
              lambda r: f"could not execute statement; SQL [n/a]; deadlock detected, transaction {r.randint(100000, 999999)} rolled back",
              ("com.bank.{app}.repository.LedgerRepository.save",)),
    ErrorKind("jwt-expired", "io.jsonwebtoken.ExpiredJwtException",
              lambda r: f"JWT expired at 2026-11-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z. Current time: 2026-11-{r.randint(1, 28):02d}T10:00:00Z",
              ("com.bank.{app}.security.JwtFilter.doFilterInternal",)),
    ErrorKind("validation", "jakarta.validation.ConstraintViolationException",
              lambda r: f"createPayment.request.amount: must be greater than 0 (requestId={_uuid(r)})",
              ("com.bank.{app}.api.PaymentController.create",)),
    ErrorKind("http-503", "org.springframework.web.client.HttpServerErrorException",
              lambda r: f"503 Service Unavailable from GET http://fx-rates:8080/rates/{r.choice(['EUR', 'USD', 'CZK', 'GBP'])}",
              ("com.bank.{app}.client.RatesClient.fetch",)),
    ErrorKind("optimistic-lock", "jakarta.persistence.OptimisticLockException",
              lambda r: f"Row was updated or deleted by another transaction (entity Order#{r.randint(1, 10 ** 7)})",
              ("com.bank.{app}.service.OrderService.update",)),
    ErrorKind("redis-timeout", "io.lettuce.core.RedisCommandTimeoutException",
              lambda r: f"Command timed out after {r.choice([1, 2, 5])} second(s)",
              ("com.bank.{app}.cache.SessionCache.get",)),
    ErrorKind("file-missing", "java.nio.file.NoSuchFileException",
              lambda r: f"/data/import/statements/{r.randint(2020, 2026)}/{r.randint(1, 12):02d}/stmt_{r.randint(1000, 9999)}.csv",
              ("com.bank.{app}.batch.StatementImporter.read",)),
    ErrorKind("mq-reconnect", "com.ibm.mq.MQException",
              lambda r: f"JMSWMQ2013: The security authentication was not valid that was supplied for queue manager 'QM{r.randint(1, 4)}' with connection mode 'Client' and host name '{_ip(r)}({r.randint(1414, 1420)})'",
              ("com.bank.{app}.mq.MessageListener.onMessage",)),
    ErrorKind("duplicate-key", "org.springframework.dao.DuplicateKeyException",
              lambda r: f"ERROR: duplicate key value violates unique constraint \"payment_ref_uk\" Detail: Key (reference)=(PAY{r.randint(10 ** 8, 10 ** 9)}) already exists.",
              ("com.bank.{app}.repository.PaymentRepository.insert",)),
    ErrorKind("circuit-open", "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
              lambda r: f"CircuitBreaker 'core-banking' is OPEN and does not permit further calls (failure rate {r.randint(50, 100)}.0%)",
              ("com.bank.{app}.client.CoreBankingClient.call",)),
    ErrorKind("oom", "java.lang.OutOfMemoryError",
              lambda r: "Java heap space",
              ("com.bank.{app}.batch.ReportBuilder.build",)),
    ErrorKind("illegal-state", "java.lang.IllegalStateException",
              lambda r: f"Unexpected status {r.choice(['PENDING', 'SETTLED', 'REJECTED'])} for transfer {_uuid(r)}",
              ("com.bank.{app}.service.SettlementService.settle",)),
    ErrorKind("ssl-handshake", "javax.net.ssl.SSLHandshakeException",
              lambda r: "PKIX path building failed: unable to find valid certification path to requested target",
              ("com.bank.{app}.client.PartnerClient.post",)),
    ErrorKind("number-format", "java.lang.NumberFormatException",
              lambda r: f"For input string: \"{r.choice(['12,5', 'N/A', '1e3x', '--'])}\"",
              ("com.bank.{app}.parser.AmountParser.parse",)),
    ErrorKind("rate-limited", "com.bank.common.RateLimitExceededException",
              lambda r: f"Rate limit exceeded for client {r.choice(['mobile', 'web', 'partner-' + str(r.randint(1, 20))])}: {r.randint(101, 500)} requests in 60s",
              ("com.bank.{app}.api.RateLimitFilter.check",)),
]

# errors that only appear after a deploy (new problems)
DEPLOY_ERRORS: list[ErrorKind] = [
    ErrorKind("deploy-class-cast", "java.lang.ClassCastException",
              lambda r: "class com.bank.dto.PaymentV2 cannot be cast to class com.bank.dto.Payment",
              ("com.bank.{app}.api.PaymentController.list",)),
    ErrorKind("deploy-no-such-method", "java.lang.NoSuchMethodError",
              lambda r: "'java.lang.String com.bank.common.Iban.normalized()'",
              ("com.bank.{app}.service.IbanService.validate",)),
    ErrorKind("deploy-config", "org.springframework.beans.factory.BeanCreationException",
              lambda r: f"Error creating bean with name 'limitsClient': Could not resolve placeholder 'limits.url' in value \"${{limits.url}}\" ({_uuid(r)})",
              ("com.bank.{app}.config.ClientConfig.limitsClient",)),
]


def stack_trace(kind: ErrorKind, app: str, message: str, r: random.Random) -> str:
    pkg = app.replace("-", "")
    lines = [f"{kind.error_type}: {message}"]
    for frame in kind.frames:
        cls, _, method = frame.format(app=pkg).rpartition(".")
        lines.append(f"\tat {cls}.{method}({cls.rsplit('.', 1)[-1]}.java:{r.randint(20, 400)})")
    lines += ["\tat org.springframework.aop.framework.ReflectiveMethodInvocation.proceed(ReflectiveMethodInvocation.java:186)",
              "\tat java.base/java.lang.Thread.run(Thread.java:1583)"]
    if kind.key in ("pool-timeout", "read-timeout"):
        lines.append(f"Caused by: java.net.ConnectException: Connection refused: {_ip(r)}:5432")
        lines.append("\tat java.base/sun.nio.ch.Net.connect0(Native Method)")
    return "\n".join(lines)
